import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tfposenc.data import make_grid, normalize, paste
from tfposenc.normalization import pixel_mean, pixel_std


def test_paste_holds_image_in_its_cell_and_zeros_elsewhere():
    image = np.random.default_rng(0).normal(size=(4, 4, 3)).astype("float32") + 5
    for cell in range(9):
        canvas = paste(image, cell, 3).numpy()
        assert canvas.shape == (12, 12, 3)
        row, col = divmod(cell, 3)
        np.testing.assert_array_equal(canvas[row * 4 : row * 4 + 4, col * 4 : col * 4 + 4], image)
        mask = np.ones((12, 12), bool)
        mask[row * 4 : row * 4 + 4, col * 4 : col * 4 + 4] = False
        assert np.all(canvas[mask] == 0)


def test_paste_eager_equals_dataset_map():
    image = np.arange(2 * 2 * 3, dtype="float32").reshape(2, 2, 3)
    ds = tf.data.Dataset.range(25).map(lambda c: paste(tf.constant(image), c, 5))
    for cell, mapped in enumerate(ds):
        np.testing.assert_array_equal(mapped.numpy(), paste(image, cell, 5).numpy())


def source(n=12, size=4):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(n, size, size, 3)).astype("uint8")
    return tf.data.Dataset.from_tensor_slices((images, np.arange(n) % 10)), images


def test_canvas_is_pixel_image_on_mean_colour_with_row_major_location_label():
    ds, images = source()
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    for i, (canvas, label) in enumerate(make_grid(ds, 3, mean=mean, seed=0)):
        canvas, label = canvas.numpy(), int(label)
        assert canvas.dtype == np.float32
        row, col = divmod(label, 3)
        cell = canvas[row * 4 : row * 4 + 4, col * 4 : col * 4 + 4]
        np.testing.assert_array_equal(cell, images[i].astype("float32"))  # exact pixels
        mask = np.ones((12, 12), bool)
        mask[row * 4 : row * 4 + 4, col * 4 : col * 4 + 4] = False
        fill = (np.array(mean) * 255).astype("float32")
        assert np.all(canvas[mask] == fill)
        # The model's normalisation makes empty cells exactly 0 (the authors' canvas)
        # and the image cell the normalised image.
        normalised = (canvas - pixel_mean(mean)) / pixel_std(std)
        assert np.all(normalised[mask] == 0)
        np.testing.assert_allclose(
            normalised[row * 4 : row * 4 + 4, col * 4 : col * 4 + 4],
            (images[i] / 255.0 - np.array(mean)) / np.array(std),
            rtol=1e-5,
            atol=1e-5,
        )
    black = next(iter(make_grid(ds, 3, seed=0)))[0].numpy()
    assert np.count_nonzero(black.any(-1)) <= 16


def test_class_target_and_flip():
    ds, images = source()
    for i, (canvas, label) in enumerate(make_grid(ds, 2, target="class", flip=True, seed=3)):
        assert int(label) == i % 10
        canvas = canvas.numpy()
        nonzero = [
            (r, c)
            for r in range(2)
            for c in range(2)
            if np.any(canvas[r * 4 : r * 4 + 4, c * 4 : c * 4 + 4])
        ]
        ((r, c),) = nonzero
        cell = canvas[r * 4 : r * 4 + 4, c * 4 : c * 4 + 4]
        plain = images[i].astype("float32")
        assert np.allclose(cell, plain) or np.allclose(cell, plain[:, ::-1])


def test_cells_are_uniform_and_fresh_per_draw():
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((1000, 1, 1, 1), "uint8"), np.zeros(1000)))
    grid = make_grid(ds, 3, seed=7).repeat(20)
    labels = np.array([int(y) for _, y in grid])
    assert len(labels) == 20_000
    counts = np.bincount(labels, minlength=9)
    assert stats.chisquare(counts).pvalue > 0.001
    first, second = labels[:1000], labels[1000:2000]
    assert np.mean(first == second) < 0.3  # redrawn each epoch, not fixed per image
    again = np.array([int(y) for _, y in make_grid(ds, 3, seed=7).take(1000)])
    np.testing.assert_array_equal(again, first)  # the seed reproduces the draws


def test_all_cells_placement_and_passes():
    ds, _ = source(n=3)
    grid = list(make_grid(ds, 2, placement="all_cells"))
    assert [int(y) for _, y in grid] == [0, 1, 2, 3] * 3
    assert len(list(make_grid(ds, 2, passes=4))) == 12


def test_cell_size_resizes():
    ds, _ = source(n=2, size=8)
    canvas, _ = next(iter(make_grid(ds, 3, cell_size=4)))
    assert canvas.shape == (12, 12, 3)
    resized = normalize(np.full((8, 8, 3), 255, "uint8"), cell_size=4).numpy()
    assert resized.shape == (4, 4, 3)
    np.testing.assert_allclose(resized, 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"grid_size": 0}, "Received: grid_size=0"),
        ({"target": "where"}, "Received: target='where'"),
        ({"cell_size": 0}, "Received: cell_size=0"),
        ({"placement": "center"}, "Received: placement='center'"),
        ({"passes": 0}, "Received: passes=0"),
    ],
)
def test_bad_arguments(kwargs, match):
    ds, _ = source()
    with pytest.raises(ValueError, match=match):
        make_grid(ds, **kwargs)
    with pytest.raises(ValueError, match="Received: cell=9"):
        paste(np.zeros((2, 2, 1), "float32"), 9, 3)
