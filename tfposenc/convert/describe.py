"""How the change report of `convert_model` writes a layer: its border and sampling."""

import keras

from tfposenc.layers import BlurPool2D, PaddedConv2D, Padding2D

from .padding import CONV_TYPES, POOL_TYPES, pads_of, window_of


def describe(layer):
    """A short description of a layer's border and sampling, for the change report."""
    kind = type(layer).__name__
    if isinstance(layer, (keras.layers.ZeroPadding2D,)):
        return f"{kind}({pads_of(layer)})"
    if isinstance(layer, Padding2D):
        return f"{kind}({layer.padding}, {layer.padding_mode!r})"
    if isinstance(layer, BlurPool2D):
        return f"{kind}(filter_size={layer.filter_size}, strides={layer.strides}, {layer.padding_mode!r})"
    if isinstance(layer, CONV_TYPES + POOL_TYPES):
        kernel, strides, _ = window_of(layer)
        padding = layer.padding_mode if isinstance(layer, PaddedConv2D) else layer.padding
        return f"{kind}({kernel[0]}x{kernel[1]}, strides={strides[0]}, {padding!r})"
    return kind
