"""The border geometry of Keras layers: what `padding="same"` pads, which layers pad.

TensorFlow's `"same"` pads `total = max((out - 1) * stride + k_eff - size, 0)` pixels
per axis, `total // 2` before and the rest after (`out = ceil(size / stride)`,
`k_eff = (k - 1) * dilation + 1`): at stride 2 on even sizes that is one pixel less on
the top/left than on the bottom/right. The converter keeps that geometry exactly and
changes only what the pad holds.
"""

import keras

from tfposenc.layers import PaddedConv2D, Padding2D

CONV_TYPES = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
POOL_TYPES = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def window_of(layer):
    """`(kernel, strides, dilation)` pairs of a conv or pool layer."""
    if isinstance(layer, POOL_TYPES):
        strides = layer.strides if layer.strides is not None else layer.pool_size
        return pair(layer.pool_size), pair(strides), (1, 1)
    return pair(layer.kernel_size), pair(layer.strides), pair(layer.dilation_rate)


def same_padding(size, kernel, stride, dilation=1):
    """`(before, after)` that TensorFlow's `padding="same"` pads on one axis.

    Returns None when the pad depends on an unknown `size` (stride > 1).
    """
    effective = (kernel - 1) * dilation + 1
    if stride == 1:
        total = effective - 1
    elif size is None:
        return None
    else:
        out = -(-size // stride)
        total = max((out - 1) * stride + effective - size, 0)
    return (total // 2, total - total // 2)


def layer_same_padding(layer, input_shape, strides=None):
    """`((top, bottom), (left, right))` of `layer`'s `"same"` pad on `input_shape`, at
    `strides` (the layer's own when None); None where an unknown size decides it."""
    kernel, own_strides, dilation = window_of(layer)
    strides = own_strides if strides is None else strides
    axes = (1, 2) if getattr(layer, "data_format", "channels_last") == "channels_last" else (2, 3)
    pads = tuple(
        same_padding(input_shape[axis], k, s, d)
        for axis, k, s, d in zip(axes, kernel, strides, dilation)
    )
    return None if None in pads else pads


def is_zero_pad(layer):
    """A layer that only pads zeros: `ZeroPadding2D` or a zero-mode `Padding2D`."""
    if isinstance(layer, keras.layers.ZeroPadding2D):
        return True
    return isinstance(layer, Padding2D) and layer.padding_mode == "zero"


def pads_of(layer):
    """The `((top, bottom), (left, right))` of a zero-pad layer."""
    return tuple(tuple(int(v) for v in side) for side in layer.padding)


def is_valid_window(layer):
    """A conv or pool that does not pad itself (its border comes from a pad before it)."""
    if isinstance(layer, PaddedConv2D):
        return layer.padding_mode == "valid"
    return isinstance(layer, CONV_TYPES + POOL_TYPES) and layer.padding == "valid"
