import numpy as np
import pytest
import tensorflow as tf

from tfposenc.data import load, load_digits_arrays, make_segmentation
from tfposenc.data.segmentation import tile_cells


def first_canvas(k, **kwargs):
    canvas, labels = next(iter(make_segmentation(load("digits", "train"), k, **kwargs)))
    return canvas.numpy(), labels.numpy()


@pytest.mark.parametrize("k", [1, 3, 4])
def test_labels_match_the_pasted_digits_pixel_by_pixel(k):
    images, classes = load_digits_arrays("train")
    canvas, labels = first_canvas(k)
    assert canvas.dtype == np.float32 and labels.dtype == np.int64
    assert canvas.shape == (8 * k, 8 * k, 3) and labels.shape == (8 * k, 8 * k)
    for cell in range(k * k):
        row, col = divmod(cell, k)
        block = np.s_[row * 8 : (row + 1) * 8, col * 8 : (col + 1) * 8]
        np.testing.assert_array_equal(canvas[block], images[cell].astype("float32"))
        for y in range(8):
            for x in range(8):
                ink = images[cell, y, x].astype(float).mean() >= 128
                expected = classes[cell] if ink else 10
                assert labels[block][y, x] == expected, (cell, y, x)


def test_canvas_count_pixel_space_and_classes():
    canvases = make_segmentation(load("digits", "test"), 3)
    batches = list(canvases.batch(64).as_numpy_iterator())
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    assert len(images) == 360 // 9
    assert images.max() == 255.0 and images.min() == 0.0  # pixel space, not normalised
    assert set(np.unique(labels)) == set(range(11))
    assert 0.2 < np.mean(labels != 10) < 0.45  # the documented ~32% ink


def test_resized_cells_are_labelled_from_their_own_pixels():
    images, classes = load_digits_arrays("train")
    canvas, labels = first_canvas(2, cell_size=16, ink_threshold=100, background_class=12)
    assert canvas.shape == (32, 32, 3)
    for cell in range(4):
        row, col = divmod(cell, 2)
        block = np.s_[row * 16 : (row + 1) * 16, col * 16 : (col + 1) * 16]
        resized = tf.image.resize(images[cell].astype("float32"), (16, 16), antialias=True)
        np.testing.assert_allclose(canvas[block], np.clip(resized.numpy(), 0, 255), atol=1e-4)
        ink = canvas[block].mean(axis=-1) >= 100
        np.testing.assert_array_equal(labels[block], np.where(ink, classes[cell], 12))


def test_tile_cells_eagerly_and_inside_dataset_map():
    cells = np.arange(9 * 2 * 2 * 3).reshape(9, 2, 2, 3)
    expected = np.concatenate(
        [np.concatenate([cells[r * 3 + c] for c in range(3)], axis=1) for r in range(3)], axis=0
    )
    np.testing.assert_array_equal(tile_cells(cells, 3).numpy(), expected)
    mapped = tf.data.Dataset.from_tensors(cells).map(lambda x: tile_cells(x, 3))
    np.testing.assert_array_equal(next(iter(mapped)).numpy(), expected)
    np.testing.assert_array_equal(tile_cells(cells[..., 0], 3).numpy(), expected[..., 0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"grid_size": 0}, "Received: grid_size=0"),
        ({"cell_size": 0}, "Received: cell_size=0"),
        ({"ink_threshold": 300}, "Received: ink_threshold=300"),
        ({"ink_threshold": "half"}, "Received: ink_threshold='half'"),
        ({"background_class": -1}, "Received: background_class=-1"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_segmentation(load("digits", "test"), **kwargs)


def test_flipped_canvases_flip_their_label_maps_with_them():
    from tfposenc.data.segmentation import flip_pair

    # A hand-built 2x2 canvas of 2-px cells: ink only in the left column of cell 0.
    images = np.zeros((4, 2, 2, 3), "uint8")
    images[0, :, 0] = 255
    labels = np.array([7, 1, 2, 3], "int64")
    source = tf.data.Dataset.from_tensor_slices((images, labels)).repeat(20)
    plain = next(iter(make_segmentation(source, grid_size=2)))
    canvas, label_map = plain[0].numpy(), plain[1].numpy()
    expected_map = np.full((4, 4), 10)
    expected_map[:2, 0] = 7  # only cell 0 has ink, in its left column
    np.testing.assert_array_equal(label_map, expected_map)
    seen = set()
    for flipped_canvas, flipped_labels in make_segmentation(source, grid_size=2, flip=True, seed=1):
        flipped = bool(flipped_canvas.numpy()[0, 3, 0] == 255)
        seen.add(flipped)
        expected = (canvas[:, ::-1], label_map[:, ::-1]) if flipped else (canvas, label_map)
        np.testing.assert_array_equal(flipped_canvas.numpy(), expected[0])
        np.testing.assert_array_equal(flipped_labels.numpy(), expected[1])
    assert seen == {True, False}  # 20 canvases, both kinds drawn
    # Eagerly and inside Dataset.map alike.
    eager = flip_pair(tf.constant(canvas), tf.constant(label_map), tf.constant(True))
    np.testing.assert_array_equal(eager[1].numpy(), label_map[:, ::-1])
    mapped = tf.data.Dataset.from_tensors((canvas, label_map)).map(
        lambda c, m: flip_pair(c, m, tf.constant(True))
    )
    np.testing.assert_array_equal(next(iter(mapped))[0].numpy(), canvas[:, ::-1])
