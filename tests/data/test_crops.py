"""Every row of the shift-invariance table trains on the same shift distribution.

A hand-built image holds one bright pixel; its position is tracked through each row's
training pipeline (`training_crop`, then the model's own views where it cuts them).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfposenc.data import cuts_own_crops, training_crop
from tfposenc.models import AugShift, Classifier, ResNetBackbone

SIZE, CENTRE, DRAWS = 20, 10, 600


def backbone(**kwargs):
    return ResNetBackbone(18, stem="cifar", width=4, **kwargs)


def rows(max_shift, **views):
    """The table's rows (as the trainer builds them) with AugShift views `views`."""
    return {
        "baseline": Classifier(backbone(), 3),
        "shift_aug": AugShift(
            Classifier(backbone(), 3), max_shift, consistency_weight=0.0, seed=1, **views
        ),
        "augshift": AugShift(Classifier(backbone(), 3), max_shift, seed=2, **views),
        "blurpool": Classifier(backbone(downsampling="blur"), 3),
        "aps": Classifier(backbone(padding_mode="circular", downsampling="aps"), 3),
    }


def bright_pixel_image():
    image = np.zeros((SIZE, SIZE, 3), "float32")
    image[CENTRE, CENTRE] = 255.0
    return image


def source(count=DRAWS):
    return tf.data.Dataset.from_tensors((bright_pixel_image(), 0)).repeat(count)


def pipeline_views(model, crop):
    """Each training view the row's model sees of DRAWS copies of the image."""
    images, _ = next(iter(crop(source()).batch(DRAWS)))
    if cuts_own_crops(model):
        return [keras.ops.convert_to_numpy(v) for v in model.make_views(images)]
    return [images.numpy()]


def bright_offsets(views, origin):
    """`(dy, dx)` of the bright pixel in every view relative to `origin`."""
    found = []
    for view in views:
        flat = view[..., 0].reshape(len(view), -1)
        assert np.all(flat.max(axis=1) == 255.0)  # the pixel never leaves the frame
        rows, cols = np.unravel_index(flat.argmax(axis=1), view.shape[1:3])
        found.append(np.stack([rows - origin[0], cols - origin[1]], axis=1))
    return np.concatenate(found)


@pytest.mark.parametrize(
    "max_shift, shift_mode, crop_size, expected",
    [
        # pad 4 and cut a 20-px window: the pixel moves by -4..4 per axis.
        (4, "symmetric", None, range(-4, 5)),
        # 16-px windows at offsets 0..4: the pixel appears 0..4 px up/left of (10, 10).
        (5, "crop", 16, range(-4, 1)),
    ],
)
def test_every_row_sees_the_same_shift_distribution(max_shift, shift_mode, crop_size, expected):
    views = {"shift_mode": shift_mode, "crop_size": crop_size}
    seen = {}
    for index, (name, model) in enumerate(rows(max_shift, **views).items()):

        def crop(data, model=model, index=index):
            return training_crop(
                data, max_shift, shift_mode, crop_size=crop_size, model=model, seed=index
            )

        offsets = bright_offsets(pipeline_views(model, crop), (CENTRE, CENTRE))
        seen[name] = offsets
        assert np.abs(offsets).max() == max(abs(expected.start), abs(expected.stop - 1)), name
        for axis in (0, 1):  # every offset of the range occurs, nothing outside it
            assert sorted(set(offsets[:, axis].tolist())) == list(expected), name
    # Same distribution: each row's offset histogram is close to uniform over the range.
    for name, offsets in seen.items():
        counts = np.unique(offsets[:, 0], return_counts=True)[1] / len(offsets)
        assert np.allclose(counts, 1 / len(expected), atol=0.06), (name, counts)
    assert cuts_own_crops(rows(4)["augshift"]) and not cuts_own_crops(rows(4)["aps"])


def test_augshift_gets_uncropped_images():
    # The confound this replaces: the pipeline's +-4 crop, then AugShift's own +-4 views,
    # reached up to +-8. Through training_crop, AugShift gets the image unchanged.
    model = AugShift(Classifier(backbone(), 3), 4, seed=0)
    image = bright_pixel_image()
    data = tf.data.Dataset.from_tensors((image, 7))
    assert training_crop(data, 4, model=model) is data
    cropped = next(iter(training_crop(source(300), 4).batch(300)))[0].numpy()
    stacked = bright_offsets([keras.ops.convert_to_numpy(model.make_views(cropped)[0])], (10, 10))
    assert np.abs(stacked).max() > 4  # the old composition: wider than any control's


def test_crop_eagerly_equals_padded_window():
    image = np.random.default_rng(0).uniform(0, 255, (6, 7, 3)).astype("float32")
    padded = np.pad(image, ((2, 2), (2, 2), (0, 0)))
    windows = {padded[y : y + 6, x : x + 7].tobytes() for y in range(5) for x in range(5)}
    data = tf.data.Dataset.from_tensors((image, 0)).repeat(40)
    for seed in (None, 3):
        for view, _ in training_crop(data, 2, seed=seed):
            assert view.shape == image.shape and view.numpy().tobytes() in windows


def test_seeded_crops_are_reproducible_under_parallel_maps():
    data = tf.data.Dataset.from_tensor_slices(
        (np.arange(400 * 6 * 6, dtype="float32").reshape(400, 6, 6, 1), np.zeros(400))
    )

    def run(seed):
        return np.concatenate([x.numpy() for x, _ in training_crop(data, 2, seed=seed).batch(50)])

    first = run(7)
    np.testing.assert_array_equal(first, run(7))
    assert not np.array_equal(first, run(8))
    # Element i's offsets are a pure function of (seed, i): stateless, whatever the order
    # in which parallel map calls run.
    from tfposenc.augment import apply_shift

    images = np.arange(400 * 6 * 6, dtype="float32").reshape(400, 6, 6, 1)
    for i in (0, 1, 199, 399):
        key = tf.constant([7, i], tf.int64)
        offsets = tf.random.stateless_uniform((1, 2), key, -2, 3, dtype=tf.int32)
        expected = np.asarray(apply_shift(images[i : i + 1], offsets, 2, "symmetric"))[0]
        np.testing.assert_array_equal(first[i], expected)


@pytest.mark.parametrize(
    "views, match",
    [
        ({"max_shift": 8}, "Received: max_shift=8"),
        ({"max_shift": 4, "padding_mode": "reflect"}, "Received: padding_mode='reflect'"),
        ({"max_shift": 4, "shift_mode": "centred"}, "Received: shift_mode='centred'"),
        ({"max_shift": 4, "per": "batch"}, "Received: per='batch'"),
    ],
)
def test_augshift_with_other_views_is_refused(views, match):
    model = AugShift(Classifier(backbone(), 3), **views)
    with pytest.raises(ValueError, match=match):
        training_crop(source(1), 4, model=model)


def test_bad_arguments():
    data = source(1)
    with pytest.raises(ValueError, match="Received: shift_mode='circular'"):
        training_crop(data, 4, "circular")
    with pytest.raises(ValueError, match="Received: max_shift=0"):
        training_crop(data, 0)
    with pytest.raises(ValueError, match="Received: seed='1'"):
        training_crop(data, 4, seed="1")
    with pytest.raises(ValueError, match="crop_size"):
        AugShift(Classifier(backbone(), 3), 4, crop_size=16)
