import keras
import numpy as np
import pytest

from tests.harness import check_layer
from tfposenc.layers import ChannelAblation


def test_layer_round():
    check_layer(lambda: ChannelAblation(channels=[0, 2]), (2, 3, 3, 4), (2, 3, 3, 4))


def test_zeroes_exactly_the_listed_channels():
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 6)).astype("float32")
    out = keras.ops.convert_to_numpy(ChannelAblation([1, 4])(x))
    expected = x.copy()
    expected[..., [1, 4]] = 0
    np.testing.assert_array_equal(out, expected)


def test_list_changes_on_a_compiled_model_without_rebuild():
    inputs = keras.Input(shape=(4, 4, 5))
    layer = ChannelAblation(name="ablation")
    model = keras.Model(inputs, layer(inputs))
    model.compile(loss="mse")
    x = np.random.default_rng(1).normal(size=(3, 4, 4, 5)).astype("float32") + 10
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    layer.channels = [3, 0]
    assert layer.channels == [0, 3]
    out = model.predict(x, verbose=0)
    expected = x.copy()
    expected[..., [0, 3]] = 0
    np.testing.assert_array_equal(out, expected)
    layer.channels = []
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    assert model.get_layer("ablation").get_config()["channels"] == []


def test_channels_first_and_rank_two():
    x = np.ones((1, 3, 2, 2), "float32")
    out = keras.ops.convert_to_numpy(ChannelAblation([2], data_format="channels_first")(x))
    assert out[0, 2].sum() == 0 and out[0, :2].min() == 1
    out = keras.ops.convert_to_numpy(ChannelAblation([0])(np.ones((2, 3), "float32")))
    np.testing.assert_array_equal(out, [[0, 1, 1], [0, 1, 1]])


def test_out_of_range_channel():
    with pytest.raises(ValueError, match=r"channel count 4.*Received: channels=\[4\]"):
        ChannelAblation([4])(np.ones((1, 4), "float32"))
    layer = ChannelAblation()
    layer(np.ones((1, 4), "float32"))
    with pytest.raises(ValueError, match=r"Received: channels=\[1, 9\]"):
        layer.channels = [1, 9]
    with pytest.raises(ValueError, match=r"non-negative.*Received: channels=\[-1\]"):
        ChannelAblation([-1])
    with pytest.raises(ValueError, match="Received: channels='ab'"):
        ChannelAblation("ab")
