"""What adaptive polyphase sampling can stand in for, decided before building."""

import keras
import numpy as np
import pytest

from tfposenc.convert import convert_model
from tfposenc.convert.graph import Graph
from tfposenc.convert.plan import Plan


def strided(first, size):
    """`first` (a list of layers ending in a stride-2 window), a 'same' stride-2 conv,
    global pooling."""
    inputs = keras.Input((size, size, 3))
    x = inputs
    for layer in first:
        x = layer(x)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="second")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def invariant(model, size):
    x = np.random.default_rng(0).normal(size=(2, size, size, 3)).astype("float32")
    reference = np.asarray(model(x))
    for roll in [(1, 0), (0, 1), (5, 3)]:
        gap = np.abs(np.asarray(model(np.roll(x, roll, axis=(1, 2)))) - reference).max()
        assert gap <= 1e-5 * np.abs(reference).max(), roll


@pytest.mark.parametrize("size", [32, 33, 95, 96, 97])
def test_a_valid_stride_2_window_is_refused_at_any_size(size):
    # Inception's and Xception's stems: a 3x3 'valid' conv at stride 2, no pad.
    model = strided([keras.layers.Conv2D(4, 3, strides=2, name="stem")], size)
    with pytest.raises(ValueError, match=r"layer 'stem' .*'valid'.*at any input size") as error:
        convert_model(model, "circular", "aps")
    assert "Inception, Xception" in str(error.value)
    convert_model(model, "circular", "blur")  # blur keeps the 'valid' geometry


@pytest.mark.parametrize(
    "first",
    [
        # ResNet's stem pad and its 3x3 max-pool: (n + 2 - 3) // 2 + 1 = n / 2.
        lambda: [keras.layers.ZeroPadding2D(1), keras.layers.MaxPooling2D(3, 2, name="p")],
        # MobileNet's one-sided pad before a 3x3 depthwise conv.
        lambda: [
            keras.layers.ZeroPadding2D(((0, 1), (0, 1))),
            keras.layers.DepthwiseConv2D(3, strides=2, name="p"),
        ],
        # DenseNet's transition: a 2x2 average pool; a 1x1 strided conv (ResNetV2).
        lambda: [keras.layers.AveragePooling2D(2, name="p")],
        lambda: [keras.layers.Conv2D(4, 1, strides=2, name="p")],
    ],
)
def test_valid_windows_that_keep_half_the_map_convert_and_are_invariant(first):
    model = strided(first(), 16)
    converted, changes = convert_model(model, "circular", "aps")
    assert any(name == "p" for name, _, _ in changes)
    invariant(converted, 16)


@pytest.mark.parametrize("size, odd", [(30, "15x15"), (31, "31x31"), (18, "9x9")])
def test_an_odd_map_is_refused_naming_the_layer_that_subsamples_it(size, odd):
    model = strided([keras.layers.Conv2D(4, 3, strides=2, padding="same", name="first")], size)
    layer = "first" if size % 2 else "second"
    with pytest.raises(ValueError, match=rf"layer '{layer}'.*even size.*{odd}.*total stride 4"):
        convert_model(model, "circular", "aps")


def test_total_stride_is_the_largest_product_along_a_path():
    model = strided([keras.layers.Conv2D(4, 3, strides=2, padding="same")], 32)
    assert Plan(Graph(model.outputs), "circular", "stride").total_stride == 4
    inputs = keras.Input((32, 32, 3))
    a = keras.layers.MaxPooling2D(2)(keras.layers.MaxPooling2D(2)(inputs))
    b = keras.layers.Conv2D(3, 1, strides=4)(inputs)
    c = keras.layers.AveragePooling2D(2)(keras.layers.Add()([a, b]))
    assert Plan(Graph([c]), "zero", "stride").total_stride == 8
