import keras
import numpy as np
import pytest

from tests.harness import check_layer
from tfposenc.layers import ChannelShuffle


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_layer_round():
    check_layer(lambda: ChannelShuffle(seed=3), (2, 4, 4, 6), (2, 4, 4, 6), deterministic=False)


def test_output_is_a_channel_permutation_shared_by_the_batch():
    x = np.random.default_rng(0).normal(size=(3, 2, 2, 8)).astype("float32")
    out = _np(ChannelShuffle(seed=0)(x))
    perm = [
        int(np.flatnonzero(np.all(x == out[..., c : c + 1], axis=(0, 1, 2)))[0]) for c in range(8)
    ]
    assert sorted(perm) == list(range(8))
    np.testing.assert_array_equal(out, np.take(x, perm, axis=-1))


def test_differs_between_calls_and_repeats_under_same_seed():
    x = np.arange(32, dtype="float32").reshape(1, 32)
    a, b = ChannelShuffle(seed=7), ChannelShuffle(seed=7)
    first = [_np(a(x)) for _ in range(3)]
    second = [_np(b(x)) for _ in range(3)]
    assert not np.array_equal(first[0], first[1])
    for u, v in zip(first, second):
        np.testing.assert_array_equal(u, v)


def test_sampling_is_separate_from_applying():
    layer = ChannelShuffle(seed=1)
    x = np.arange(12, dtype="float32").reshape(1, 2, 2, 3)
    out = _np(layer.apply_permutation(x, np.array([2, 0, 1])))
    np.testing.assert_array_equal(out, x[..., [2, 0, 1]])
    perm = _np(layer.sample_permutation(5))
    assert sorted(perm.tolist()) == list(range(5))


def test_channels_first():
    x = np.arange(24, dtype="float32").reshape(1, 6, 2, 2)
    out = _np(ChannelShuffle(seed=2, data_format="channels_first")(x))
    assert sorted(out[0, :, 0, 0].tolist()) == x[0, :, 0, 0].tolist()
    np.testing.assert_array_equal(out[0, :, 0, 1] - out[0, :, 0, 0], np.ones(6))


def test_applied_by_predict():
    inputs = keras.Input(shape=(16,))
    model = keras.Model(inputs, ChannelShuffle(seed=5)(inputs))
    x = np.tile(np.arange(16, dtype="float32"), (4, 1))
    p1 = model.predict(x, verbose=0)
    p2 = model.predict(x, verbose=0)
    assert not np.array_equal(p1[0], x[0])
    assert not np.array_equal(p1, p2)
    np.testing.assert_array_equal(p1[0], p1[1])  # one permutation for the whole batch


def test_bad_arguments():
    with pytest.raises(ValueError, match="Received: seed='a'"):
        ChannelShuffle(seed="a")
    with pytest.raises(ValueError, match="data_format"):
        ChannelShuffle(data_format="nchw")
