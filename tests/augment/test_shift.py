import keras
import numpy as np
import pytest

from tfposenc.augment import SHIFT_MODES, apply_shift, offset_range, sample_offsets, shift_views


def np_(x):
    return keras.ops.convert_to_numpy(x)


X = np.arange(2 * 5 * 6 * 2, dtype="float32").reshape(2, 5, 6, 2) + 1


def roll_and_mask(image, dy, dx):
    """Oracle of a linear shift with zero fill: `np.roll`, then zero what wrapped."""
    out = np.roll(image, (dy, dx), axis=(0, 1))
    if dy > 0:
        out[:dy] = 0
    elif dy < 0:
        out[dy:] = 0
    if dx > 0:
        out[:, :dx] = 0
    elif dx < 0:
        out[:, dx:] = 0
    return out


def test_pinned_offsets_circular_equals_np_roll():
    offsets = np.array([[1, 2], [3, 0]])
    out = np_(apply_shift(X, offsets, 4, shift_mode="circular"))
    for i, (dy, dx) in enumerate(offsets):
        np.testing.assert_array_equal(out[i], np.roll(X[i], (dy, dx), axis=(0, 1)))
    # `mode` is an accepted alias of `shift_mode`.
    np.testing.assert_array_equal(np_(apply_shift(X, offsets, 4, mode="circular")), out)


@pytest.mark.parametrize("offsets", [[[2, -3], [-2, 3]], [[-1, -1], [0, 2]], [[2, 2], [-2, -2]]])
def test_symmetric_pinned_offsets_equal_roll_and_mask(offsets):
    out = np_(apply_shift(X, np.array(offsets), 3, shift_mode="symmetric"))
    for i, (dy, dx) in enumerate(offsets):
        np.testing.assert_array_equal(out[i], roll_and_mask(X[i], dy, dx))


def test_one_sided_pinned_offsets_hand_computed():
    offsets = np.array([[1, 2], [0, 3]])
    out = np_(apply_shift(X, offsets, 4, shift_mode="one_sided"))
    # view[i, j] = x[i - dy, j - dx], zeros where that falls outside the image.
    for i, (dy, dx) in enumerate(offsets):
        expected = np.zeros_like(X[i])
        expected[dy:, dx:] = X[i][: 5 - dy, : 6 - dx]
        np.testing.assert_array_equal(out[i], expected)
    tiny = np.array([[1, 2], [3, 4]], "float32").reshape(1, 2, 2, 1)
    one_sided = np_(apply_shift(tiny, [[1, 1]], 2, shift_mode="one_sided"))
    np.testing.assert_array_equal(one_sided[0, :, :, 0], [[0, 0], [0, 1]])
    replicate = apply_shift(tiny, [[0, 1]], 2, shift_mode="one_sided", padding_mode="replicate")
    np.testing.assert_array_equal(np_(replicate)[0, :, :, 0], [[1, 1], [3, 3]])


def test_crop_windows_have_no_fill():
    big = np.random.default_rng(0).uniform(1, 2, size=(3, 12, 12, 2)).astype("float32")
    offsets = np.array([[0, 0], [3, 1], [2, 3]])
    out = np_(apply_shift(big, offsets, 4, shift_mode="crop"))
    assert out.shape == (3, 9, 9, 2)
    for i, (dy, dx) in enumerate(offsets):
        np.testing.assert_array_equal(out[i], big[i, dy : dy + 9, dx : dx + 9])
    views = shift_views(big, 4, shift_mode="crop", crop_size=8, seed=1)
    for view in views:
        assert view.shape == (3, 8, 8, 2) and np.all(np_(view) >= 1)  # no fill anywhere
    with pytest.raises(ValueError, match="crop_size"):
        shift_views(big, 4, shift_mode="crop", crop_size=10)


def test_crop_windows_lie_in_the_centred_region():
    # 16 px, 8-px windows, offsets 0..3: the windows' region (11 px) starts at (16-11)//2 = 2.
    big = np.random.default_rng(1).uniform(1, 2, size=(4, 16, 16, 1)).astype("float32")
    offsets = np.array([[0, 0], [3, 3], [1, 2], [2, 0]])
    out = np_(apply_shift(big, offsets, 4, shift_mode="crop", crop_size=8))
    for i, (dy, dx) in enumerate(offsets):
        np.testing.assert_array_equal(out[i], big[i, 2 + dy : 10 + dy, 2 + dx : 10 + dx])


def test_offsets_cover_the_documented_range():
    for shift_mode in SHIFT_MODES:
        low, high = offset_range(8, shift_mode)
        off = np_(sample_offsets(4000, 8, seed=0, shift_mode=shift_mode))
        assert off.shape == (4000, 2)
        for axis in (0, 1):
            assert set(np.unique(off[:, axis])) == set(range(low, high + 1)), shift_mode
    assert offset_range(8, "symmetric") == (-8, 8) and offset_range(8, "crop") == (0, 7)
    shared = np_(sample_offsets(5, 8, per="batch", seed=1))
    assert np.all(shared == shared[0])


def test_symmetric_fill_band_appears_on_every_side():
    ones = np.ones((400, 8, 8, 1), "float32")
    first, second = shift_views(ones, 2, seed=keras.random.SeedGenerator(0))
    views = np.concatenate([np_(first), np_(second)])[..., 0]
    sides = {
        "top": views[:, 0, :] == 0,
        "bottom": views[:, -1, :] == 0,
        "left": views[:, :, 0] == 0,
        "right": views[:, :, -1] == 0,
    }
    counts = {side: int(mask.all(axis=1).sum()) for side, mask in sides.items()}
    # P(a side shows fill) = 2/5 per view: about 320 of 800 views, on every side.
    assert all(250 < c < 400 for c in counts.values()), counts


def test_views_differ_and_keep_shape():
    a, b = shift_views(X, 4, seed=keras.random.SeedGenerator(0))
    assert a.shape == X.shape and not np.array_equal(np_(a), np_(b))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_shift": -1}, "Received: max_shift=-1"),
        ({"max_shift": 0}, "Received: max_shift=0"),
        ({"shift_mode": "wrap"}, "Received: shift_mode='wrap'"),
        ({"mode": "wrap"}, "Received: shift_mode='wrap'"),
        ({"per": "pixel"}, "Received: per='pixel'"),
        ({"padding_mode": "edge"}, "Received: padding_mode='edge'"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"max_shift": 4}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        shift_views(X, **args)
