"""Anti-aliased downsampling with a fixed binomial low-pass filter (BlurPool)."""

import math

import keras
import numpy as np
from keras import ops

from tfposenc.layers.padding2d import PADDING_MODES, check_pad_fits, pad_spatial
from tfposenc.validation import (
    channel_axis,
    check_choice,
    check_positive_int,
    normalize_data_format,
    spatial_axes,
    spatial_shape,
)


def binomial_filter(filter_size):
    """The normalised 2D binomial filter: the outer product of Pascal's row `size - 1`."""
    row = np.array([math.comb(filter_size - 1, i) for i in range(filter_size)], "float64")
    kernel = np.outer(row, row)
    return (kernel / kernel.sum()).astype("float32")


@keras.saving.register_keras_serializable(package="tfposenc")
class BlurPool2D(keras.layers.Layer):
    """Blurs with a binomial filter, then subsamples (Zhang, ICML 2019).

    The filter of size `k` is the outer product of the binomial coefficients
    `C(k-1, i)`, normalised to sum 1 (`k=4` gives `[1, 3, 3, 1] / 8` per axis). It is
    applied depthwise after padding `floor((k-1)/2)` before and `ceil((k-1)/2)` after on
    each axis, as the reference implementation does, so the output has `ceil(size /
    strides)` rows and columns.

    Args:
        filter_size: int in 1..7. Defaults to `4`.
        strides: int, the subsampling factor. Defaults to `2`.
        padding_mode: string, a `Padding2D` mode. Defaults to `"reflect"`.
        data_format: string, `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`.

    Input shape:
        4D tensor.

    Output shape:
        4D tensor with `ceil(rows / strides)` rows and `ceil(cols / strides)` columns.

    Example:

    >>> BlurPool2D()(np.ones((1, 7, 7, 2))).shape
    (1, 4, 4, 2)

    Reference:
        - [Zhang, 2019](https://arxiv.org/abs/1904.11486)
    """

    def __init__(
        self, filter_size=4, strides=2, padding_mode="reflect", data_format=None, **kwargs
    ):
        super().__init__(**kwargs)
        if (
            not isinstance(filter_size, int)
            or isinstance(filter_size, bool)
            or not (1 <= filter_size <= 7)
        ):
            raise ValueError(
                f"`filter_size` must be an int from 1 to 7. Received: filter_size={filter_size!r}"
            )
        self.filter_size = filter_size
        self.strides = check_positive_int(strides, "strides")
        self.padding_mode = check_choice(padding_mode, PADDING_MODES, "padding_mode")
        self.data_format = normalize_data_format(data_format)
        before, after = (filter_size - 1) // 2, math.ceil((filter_size - 1) / 2)
        self.pad_sizes = ((before, after), (before, after))

    def build(self, input_shape):
        check_pad_fits(
            self.pad_sizes, spatial_shape(input_shape, self.data_format), self.padding_mode
        )
        channels = input_shape[channel_axis(self.data_format)]
        if channels is None:
            raise ValueError(
                f"BlurPool2D needs a known channel count. Received: input_shape={input_shape}"
            )
        kernel = np.tile(binomial_filter(self.filter_size)[:, :, None, None], (1, 1, channels, 1))
        self.kernel = ops.convert_to_tensor(kernel)

    def call(self, inputs):
        x = pad_spatial(inputs, self.pad_sizes, self.padding_mode, self.data_format)
        return ops.depthwise_conv(
            x,
            ops.cast(self.kernel, x.dtype),
            strides=self.strides,
            padding="valid",
            data_format=self.data_format,
        )

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis in spatial_axes(self.data_format):
            if shape[axis] is not None:
                shape[axis] = -(-shape[axis] // self.strides)
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filter_size": self.filter_size,
                "strides": self.strides,
                "padding_mode": self.padding_mode,
                "data_format": self.data_format,
            }
        )
        return config
