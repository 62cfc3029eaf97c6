import keras
import numpy as np
import pytest

from tfposenc.metrics import apply_shift, sample_offsets, shift_views


def np_(x):
    return keras.ops.convert_to_numpy(x)


X = np.arange(2 * 5 * 6 * 2, dtype="float32").reshape(2, 5, 6, 2) + 1


def test_pinned_offsets_circular_equals_np_roll():
    offsets = np.array([[1, 2], [3, 0]])
    out = np_(apply_shift(X, offsets, 4, mode="circular"))
    for i, (dy, dx) in enumerate(offsets):
        np.testing.assert_array_equal(out[i], np.roll(X[i], (dy, dx), axis=(0, 1)))


def test_pinned_offsets_crop_hand_computed():
    offsets = np.array([[1, 2], [0, 3]])
    out = np_(apply_shift(X, offsets, 4, mode="crop"))
    # view[i, j] = x[i - dy, j - dx], zeros where that falls outside the image.
    for i, (dy, dx) in enumerate(offsets):
        expected = np.zeros_like(X[i])
        expected[dy:, dx:] = X[i][: 5 - dy, : 6 - dx]
        np.testing.assert_array_equal(out[i], expected)
    tiny = np.array([[1, 2], [3, 4]], "float32").reshape(1, 2, 2, 1)
    np.testing.assert_array_equal(np_(apply_shift(tiny, [[1, 1]], 2))[0, :, :, 0], [[0, 0], [0, 1]])
    np.testing.assert_array_equal(
        np_(apply_shift(tiny, [[0, 1]], 2, padding="replicate"))[0, :, :, 0], [[1, 1], [3, 3]]
    )


def test_offsets_in_range_and_per_batch_shared():
    off = np_(sample_offsets(1000, 8, seed=0))
    assert off.shape == (1000, 2) and off.min() == 0 and off.max() == 7
    shared = np_(sample_offsets(5, 8, per="batch", seed=1))
    assert np.all(shared == shared[0])


def test_views_differ_and_keep_shape():
    a, b = shift_views(X, 4, seed=keras.random.SeedGenerator(0))
    assert a.shape == X.shape and not np.array_equal(np_(a), np_(b))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_shift": -1}, "Received: max_shift=-1"),
        ({"max_shift": 0}, "Received: max_shift=0"),
        ({"mode": "wrap"}, "Received: mode='wrap'"),
        ({"per": "pixel"}, "Received: per='pixel'"),
        ({"padding": "edge"}, "Received: padding='edge'"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"max_shift": 4}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        shift_views(X, **args)
