import keras
import numpy as np
import pytest
import tensorflow as tf

from tfposenc.metrics import PerCellAccuracy, shift_consistency


def dataset(n=64, size=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, size, size, 3)).astype("float32")
    y = rng.integers(0, 3, size=n)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16)


def global_average_model(images, training=False):
    # Logits are a fixed linear map of the channel means: invariant to circular shifts.
    means = tf.reduce_mean(images, axis=[1, 2])
    return tf.matmul(means, tf.constant([[1.0, -1.0, 0.5], [0.3, 2.0, -1.0], [-0.7, 0.1, 1.0]]))


READOUT = tf.constant(np.random.default_rng(3).normal(size=(3, 10)).astype("float32"))


def one_pixel_model(images, training=False):
    return tf.matmul(images[:, 10, 11, :], READOUT)  # 10 classes from one fixed pixel


def test_global_average_is_fully_consistent_under_circular_shifts():
    result = shift_consistency(
        global_average_model, dataset(), max_shift=8, mode="circular", passes=2
    )
    assert result["consistency"] == 100.0
    assert 0 <= result["accuracy"] <= 100


def test_one_pixel_model_is_far_from_consistent():
    for mode in ("circular", "crop"):
        result = shift_consistency(
            one_pixel_model, dataset(size=20), max_shift=8, mode=mode, passes=2
        )
        assert result["consistency"] < 50.0


def test_accuracy_matches_numpy():
    ds = dataset()
    x = np.concatenate([b[0].numpy() for b in ds])
    y = np.concatenate([b[1].numpy() for b in ds])
    expected = 100 * np.mean(np.argmax(global_average_model(x).numpy(), -1) == y)
    assert shift_consistency(global_average_model, ds, passes=1)["accuracy"] == pytest.approx(
        expected
    )


def test_same_seed_same_result_and_keras_model():
    inputs = keras.Input((12, 12, 3))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    a = shift_consistency(model, dataset(), max_shift=4, passes=2, seed=5)
    b = shift_consistency(model, dataset(), max_shift=4, passes=2, seed=5)
    assert a == b


def test_bad_arguments():
    with pytest.raises(ValueError, match="Received: max_shift=-2"):
        shift_consistency(global_average_model, dataset(), max_shift=-2)
    with pytest.raises(ValueError, match="Received: passes=0"):
        shift_consistency(global_average_model, dataset(), passes=0)


def test_per_cell_accuracy_hand_computed():
    metric = PerCellAccuracy(2)
    y_true = np.array([0, 0, 1, 3, 3, 3])
    y_pred = np.eye(4)[[0, 1, 1, 3, 3, 0]]
    metric.update_state(y_true, y_pred)
    result = keras.ops.convert_to_numpy(metric.result())
    assert result.shape == (2, 2)
    np.testing.assert_allclose(result[0], [0.5, 1.0])
    assert np.isnan(result[1, 0])
    assert result[1, 1] == pytest.approx(2 / 3)
    assert float(metric.mean_accuracy()) == pytest.approx(4 / 6)
    metric.reset_state()
    assert np.all(np.isnan(keras.ops.convert_to_numpy(metric.result())))
    with pytest.raises(ValueError, match="Received: grid_size=0"):
        PerCellAccuracy(0)


def test_centred_views_are_windows_of_the_black_padded_image():
    from tfposenc.augment import apply_shift, offset_range

    images = np.random.default_rng(0).uniform(1, 255, (64, 6, 6, 1)).astype("float32")
    for m in (1, 4, 7, 8, 16):
        low, high = offset_range(m, "centred")
        assert (low, high) == (m // 2 - m + 1, m // 2) and high - low == m - 1
        offsets = np.random.default_rng(m).integers(low, high + 1, (64, 2))
        view = np.asarray(apply_shift(images, offsets, m, "centred"))
        padded = np.pad(images, ((0, 0), (m, m), (m, m), (0, 0)))  # black fill
        for i, (dy, dx) in enumerate(offsets):  # view[i, j] = x[i - dy, j - dx]
            np.testing.assert_array_equal(
                view[i], padded[i, m - dy : m - dy + 6, m - dx : m - dx + 6]
            )


class TopLeftIsBlack:
    """A 'model' that reads one pixel: its class says whether pixel (0, 0) is black."""

    def __call__(self, images, training=False):
        black = tf.cast(images[:, 0, 0, 0] == 0, tf.float32)
        return tf.stack([black, 1 - black], axis=-1)


@pytest.mark.parametrize("m", [2, 5, 8, 16])
def test_cons_m_of_a_one_pixel_model_is_the_hand_computed_probability(m):
    # Offsets uniform over [m//2 - m + 1, m//2]: pixel (0, 0) of a view is fill exactly
    # when the content moved down (dy > 0) or right (dx > 0).
    up = (m - m // 2) / m  # P(dy <= 0)
    black = 1 - up * up
    expected = 100 * (black**2 + (1 - black) ** 2)
    size = m + 1  # no shift moves the content out of the frame entirely
    images = np.full((4000, size, size, 1), 200.0, "float32")
    data = tf.data.Dataset.from_tensor_slices((images, np.zeros(4000, "int64"))).batch(1000)
    got = shift_consistency(TopLeftIsBlack(), data, max_shift=m, passes=1)["consistency"]
    assert got == pytest.approx(expected, abs=2.5)  # 4,000 images: SD < 0.8 points


class ReadsTopLeft:
    """A 'model' that reads pixel (0, 0) of its view: class 0 when it is bright."""

    def __init__(self):
        self.seen = []

    def record(self, images):
        self.seen.append(images.numpy())
        return 0

    def __call__(self, images, training=False):
        tf.py_function(self.record, [images], tf.int32)  # runs inside the traced function
        bright = tf.cast(images[:, 0, 0, 0] > 100, tf.float32)
        return tf.stack([bright, 1 - bright], axis=-1)


def test_crop_consistency_of_a_one_pixel_model_is_the_hand_computed_probability():
    from tfposenc.metrics import per_image_agreement, view_offsets

    # 30-px images, 20-px windows, offsets 0..3: the windows' region (23 px) starts at
    # (30 - 23) // 2 = 3, so view pixel (0, 0) is image pixel (3 + dy, 3 + dx). There the
    # image is bright exactly on the diagonal dy == dx: P(bright) = 4 / 16 = 1/4, and two
    # independent views agree with probability (1/4)^2 + (3/4)^2 = 10/16.
    images = np.full((4000, 30, 30, 1), 20.0, "float32")
    for d in range(4):
        images[:, 3 + d, 3 + d] = 200.0
    images[:, :3] = images[:, :, :3] = 200.0  # outside the region: must never be read
    data = tf.data.Dataset.from_tensor_slices((images, np.zeros(4000, "int64"))).batch(1000)
    args = dict(max_shift=4, shift_mode="crop", passes=1, crop_size=20)
    got = shift_consistency(ReadsTopLeft(), data, **args)["consistency"]
    assert got == pytest.approx(100 * 10 / 16, abs=2.5)  # 4,000 images: SD 0.77 points
    # Image by image, exactly: the views agree iff both offsets are on the diagonal or
    # both off it.
    agree = per_image_agreement(ReadsTopLeft(), data, **args)[0]
    offsets = view_offsets(data, 4, "crop", passes=1)[0]
    on_diagonal = offsets[:, :, 0] == offsets[:, :, 1]
    np.testing.assert_array_equal(agree, on_diagonal[:, 0] == on_diagonal[:, 1])
    assert 100 * agree.mean() == pytest.approx(got, abs=1e-9)


def test_models_scored_with_one_seed_see_the_same_views():
    from tfposenc.metrics import per_image_agreement, view_offsets

    ds = dataset(n=40, size=16)
    first, second = ReadsTopLeft(), ReadsTopLeft()
    a = per_image_agreement(first, ds, max_shift=8, passes=2, seed=3)
    per_image_agreement(global_average_model, ds, max_shift=8, passes=2, seed=3)
    per_image_agreement(second, ds, max_shift=8, passes=2, seed=3)
    assert a.shape == (2, 40) and a.dtype == bool
    assert len(first.seen) == len(second.seen) == 6  # 3 batches x 2 passes, both views
    for x, y in zip(first.seen, second.seen):
        np.testing.assert_array_equal(x, y)
    offsets = view_offsets(ds, 8, passes=2, seed=3)
    assert offsets.shape == (2, 40, 2, 2)
    assert np.array_equal(offsets, view_offsets(ds, 8, passes=2, seed=3))
    assert not np.array_equal(offsets, view_offsets(ds, 8, passes=2, seed=4))
    # The views seen are the images shifted by those offsets (centred: [-3, 4], black fill).
    from tfposenc.augment import apply_shift

    x = np.concatenate([b[0].numpy() for b in ds])[:16]
    expected = np.asarray(apply_shift(x, offsets[0, :16, 1], 8, "centred"))
    np.testing.assert_array_equal(first.seen[0][16:], expected)
    consistency = shift_consistency(first, ds, max_shift=8, passes=2, seed=3)["consistency"]
    assert consistency == pytest.approx(100 * a.mean(), abs=1e-9)
