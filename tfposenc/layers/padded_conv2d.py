"""A 2D convolution with an explicit border mode and PyTorch's padding geometry."""

import keras
from keras import ops

from tfposenc.layers.conv_ops import (
    conv2d_matmul_filter_grad,
    matmul_filter_grad_applies,
    subsample2d,
)
from tfposenc.layers.padding2d import check_pad_fits, pad_spatial
from tfposenc.validation import check_choice, check_positive_int, spatial_axes, spatial_shape
from tfposenc.vocabulary import CONV_PADDING_MODES


@keras.saving.register_keras_serializable(package="tfposenc")
class PaddedConv2D(keras.layers.Conv2D):
    """2D convolution that pads like PyTorch's `padding=k//2`, in any border mode.

    Each spatial side is padded by `dilation_rate * (kernel_size - 1) // 2` and the
    padded tensor is convolved `"valid"`. This gives PyTorch's output size and sampling
    phase at every stride; Keras' `padding="same"` pads only the bottom/right at stride 2
    on even sizes and so samples the other phase. Where the two agree (zero mode,
    stride 1, odd kernel) the layer uses the fused `"same"` convolution.

    Args:
        filters: int, the number of output channels.
        kernel_size: int or tuple of 2 ints, the window size.
        strides: int or tuple of 2 ints. Defaults to `1`.
        padding_mode: string, one of `"zero"`, `"reflect"`, `"replicate"`, `"circular"`
            (see `Padding2D`), `"partial"` (partial-convolution padding, Liu et al. 2018:
            zero padding, then each output is multiplied by the window size over the
            number of real input pixels under the window; the bias is not re-weighted),
            or `"valid"` (no padding: every conv shrinks the map by `k - 1`). `"valid"`
            is not the authors' "no padding" setting: they resize the input so the
            network's maps keep their sizes and then convolve without padding; here the
            input keeps its size and the maps shrink (small canvases may not fit).
            Defaults to `"zero"`.
        dilation_rate: int or tuple of 2 ints. Defaults to `1`.
        **kwargs: every other argument of `keras.layers.Conv2D` (`use_bias`,
            `kernel_initializer`, `data_format`, `groups`, `activation`, ...).

    Input shape:
        4D tensor `(batch, rows, cols, channels)` (`"channels_last"`) or
        `(batch, channels, rows, cols)` (`"channels_first"`).

    Call arguments:
        inputs: the 4D input.
        training: Python boolean. Training calls of bfloat16 convolutions with small
            output maps on the TensorFlow backend compute the kernel gradient with one
            matrix product per kernel tap (see `conv_ops`); the outputs are the same.

    Output shape:
        4D tensor with `filters` channels and
        `floor((size + 2 * pad - dilation * (k - 1) - 1) / stride) + 1` rows and columns.

    Example:

    >>> conv = PaddedConv2D(8, 3, strides=2, padding_mode="reflect")
    >>> conv(np.zeros((1, 32, 32, 3))).shape
    (1, 16, 16, 8)

    Reference:
        - [Liu et al., 2018](https://arxiv.org/abs/1811.11718) (partial padding)
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding_mode="zero",
        dilation_rate=1,
        **kwargs,
    ):
        if "padding" in kwargs:
            raise ValueError(
                "PaddedConv2D sets its padding from `padding_mode`; do not pass "
                f"`padding`. Received: padding={kwargs['padding']!r}"
            )
        check_positive_int(filters, "filters")
        super().__init__(
            filters,
            kernel_size,
            strides=strides,
            padding="valid",
            dilation_rate=dilation_rate,
            **kwargs,
        )
        self.padding_mode = check_choice(padding_mode, CONV_PADDING_MODES, "padding_mode")
        if padding_mode == "valid":
            pads = (0, 0)
        else:
            pads = tuple(d * (k - 1) // 2 for d, k in zip(self.dilation_rate, self.kernel_size))
        self.pad_sizes = ((pads[0], pads[0]), (pads[1], pads[1]))
        native_same = (
            padding_mode == "zero"
            and self.strides == (1, 1)
            and all(k % 2 == 1 for k in self.kernel_size)
        )
        # The fused "same" conv pads exactly like PyTorch here, and is faster.
        if native_same:
            self.padding = "same"
        # A 1x1 kernel at stride s equals subsampling then a stride-1 conv: a quarter of
        # the work at stride 2, and it avoids a oneDNN bug in TF 2.21 that corrupts the
        # heap in the input gradient of 1x1 stride-2 convs on some sizes (e.g. 118).
        self.subsample_first = self.kernel_size == (1, 1) and self.strides != (1, 1)

    def build(self, input_shape):
        if self.padding_mode in ("reflect", "circular"):
            check_pad_fits(
                self.pad_sizes, spatial_shape(input_shape, self.data_format), self.padding_mode
            )
        super().build(input_shape)

    def _explicit_pad(self):
        return self.padding == "valid" and self.padding_mode not in ("valid",)

    def _partial_ratio(self, inputs):
        """Window size over the count of real pixels under each output window."""
        height, width = spatial_shape(ops.shape(inputs), self.data_format)
        mask = ops.ones((1, height, width, 1), dtype=self.compute_dtype)
        mask = pad_spatial(mask, self.pad_sizes, "zero", "channels_last")
        window = ops.ones(self.kernel_size + (1, 1), dtype=self.compute_dtype)
        counts = ops.conv(
            mask,
            window,
            strides=list(self.strides),
            padding="valid",
            dilation_rate=self.dilation_rate,
            data_format="channels_last",
        )
        ratio = float(self.kernel_size[0] * self.kernel_size[1]) / ops.maximum(counts, 1.0)
        if self.data_format == "channels_first":
            ratio = ops.transpose(ratio, (0, 3, 1, 2))
        return ratio

    def _matmul_filter_grad(self, inputs, training):
        """Whether this training call takes the per-tap matmul kernel gradient."""
        if not training or self.subsample_first or self.kernel_size == (1, 1):
            return False
        return matmul_filter_grad_applies(
            self.compute_output_shape(tuple(inputs.shape)),
            self.compute_dtype,
            self.data_format,
            self.dilation_rate,
            self.groups,
        )

    def call(self, inputs, training=None):
        x = inputs
        if self._explicit_pad():
            mode = "zero" if self.padding_mode == "partial" else self.padding_mode
            x = pad_spatial(x, self.pad_sizes, mode, self.data_format)
        if self.subsample_first:
            x = subsample2d(x, *self.strides, data_format=self.data_format)
            outputs = ops.conv(
                x, self.kernel, strides=1, padding="valid", data_format=self.data_format
            )
        elif self._matmul_filter_grad(inputs, training):
            # See conv_ops: oneDNN's bfloat16 filter gradient is slow on small maps.
            kernel = ops.cast(self.kernel, self.compute_dtype)
            outputs = conv2d_matmul_filter_grad(x, kernel, self.strides, self.padding)
        else:
            outputs = self.convolution_op(x, self.kernel)
        if self.padding_mode == "partial":
            outputs = outputs * ops.cast(self._partial_ratio(inputs), outputs.dtype)
        if self.use_bias:
            if self.data_format == "channels_last":
                bias_shape = (1, 1, 1, self.filters)
            else:
                bias_shape = (1, self.filters, 1, 1)
            outputs = ops.add(outputs, ops.reshape(self.bias, bias_shape))
        if self.activation is not None:
            return self.activation(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        if self._explicit_pad():
            for axis, (before, after) in zip(spatial_axes(self.data_format), self.pad_sizes):
                if shape[axis] is not None:
                    shape[axis] += before + after
        return super().compute_output_shape(tuple(shape))

    def get_config(self):
        config = super().get_config()
        config.pop("padding", None)
        config["padding_mode"] = self.padding_mode
        return config
