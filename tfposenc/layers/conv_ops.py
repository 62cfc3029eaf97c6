"""Two cheaper formulations of convolution pieces, in keras.ops only.

`subsample2d` takes every `rows`-th row and `cols`-th column with a reshape and a
contiguous slice instead of a strided slice: on TensorFlow's CPU kernels the strided
slice and its gradient cost 5-8x more (forward + backward of a (48, 48, 48, 64)
tensor: 24 ms strided, 3-5 ms reshaped, float32 and bfloat16).

`conv2d_matmul_filter_grad` is a convolution whose kernel gradient is computed as
`kh * kw` matrix products, one per kernel tap, instead of one
`Conv2DBackpropFilter` op: TensorFlow 2.21's oneDNN kernel for the bfloat16 filter
gradient is up to 5x slower than the forward convolution when the output map is small
(3x3 to 8x8), while a matrix product over `batch * rows * cols` runs near the
machine's bfloat16 matmul rate there. `matmul_filter_grad_applies` says where the
replacement is used (measured with `benchmarks/train_throughput.py`); the environment
variable `TFPOSENC_MATMUL_CONV_GRAD=0` turns it off.
"""

import functools

import keras
from keras import ops

from tfposenc.validation import env_switch

MATMUL_GRAD_ENV_VAR = "TFPOSENC_MATMUL_CONV_GRAD"
# Output maps of at most this many positions take the matmul filter gradient.
MATMUL_GRAD_MAX_POSITIONS = 64


def subsample2d(x, rows, cols, data_format="channels_last"):
    """`x[:, ::rows, ::cols, :]` (or the `channels_first` equivalent).

    Channels-last inputs whose static height and width are multiples of the strides are
    reshaped so that the kept rows and columns form one contiguous block, which one
    `ops.slice` cuts out; other inputs use strided indexing. Both give the same values
    and the same gradient.
    """
    height, width = (x.shape[1], x.shape[2]) if data_format == "channels_last" else x.shape[2:]
    channels = x.shape[-1]
    divisible = (
        height is not None
        and width is not None
        and channels is not None
        and height % rows == 0
        and width % cols == 0
    )
    if data_format != "channels_last" or not divisible:
        if data_format == "channels_last":
            return x[:, ::rows, ::cols, :]
        return x[:, :, ::rows, ::cols]
    # (batch * height/rows, rows, width/cols, cols * channels): row phase 0 is index 0
    # of axis 1, column phase 0 is the first `channels` entries of the last axis.
    grouped = ops.reshape(x, (-1, rows, width // cols, cols * channels))
    kept = ops.slice(grouped, (0, 0, 0, 0), (ops.shape(grouped)[0], 1, width // cols, channels))
    return ops.reshape(kept, (-1, height // rows, width // cols, channels))


def matmul_filter_grad_enabled_by_env():
    """False when `TFPOSENC_MATMUL_CONV_GRAD` is `"0"` (or false/no/off), else True."""
    return env_switch(MATMUL_GRAD_ENV_VAR)


@functools.cache
def _gpu_visible():
    return bool(keras.distribution.list_devices("gpu"))


def matmul_filter_grad_applies(output_shape, compute_dtype, data_format, dilation, groups):
    """Whether `conv2d_matmul_filter_grad` is the faster choice for this convolution.

    True for channels-last, undilated, ungrouped bfloat16 convolutions on the
    TensorFlow backend without a visible GPU (the measurement is oneDNN's CPU kernel)
    whose output map has a static size of at most 64 positions, unless the environment
    variable turns it off. Float32 is left alone: there the oneDNN filter gradient is
    as fast as the per-tap products.
    """
    if keras.backend.backend() != "tensorflow" or not matmul_filter_grad_enabled_by_env():
        return False
    if _gpu_visible():
        return False
    if keras.backend.standardize_dtype(compute_dtype) != "bfloat16":
        return False
    if data_format != "channels_last" or tuple(dilation) != (1, 1) or groups != 1:
        return False
    rows, cols = output_shape[1], output_shape[2]
    return rows is not None and cols is not None and rows * cols <= MATMUL_GRAD_MAX_POSITIONS


def _tap_windows(x, kernel_size, strides, out_size):
    """The `kh * kw` input windows that meet the kernel taps, each as (n, channels).

    Contiguous `ops.slice` copies (a strided slice costs several times more on
    TensorFlow's CPU kernels): at stride s the padded map is regrouped so that each
    sampling phase is a contiguous block first, where the static sizes allow.
    """
    (kh, kw), (sh, sw), (rows, cols) = kernel_size, strides, out_size
    batch, height, width, channels = ops.shape(x)[0], x.shape[1], x.shape[2], x.shape[3]
    windows = []
    if (sh, sw) == (1, 1):
        for i in range(kh):
            for j in range(kw):
                window = ops.slice(x, (0, i, j, 0), (batch, rows, cols, channels))
                windows.append(ops.reshape(window, (-1, channels)))
        return windows
    phased = height % sh == 0 and width % sw == 0
    if phased:
        # (batch * height/sh, sh, width/sw, sw * channels): tap (i, j) reads row phase
        # i % sh from block row i // sh on, column phase j % sw from block column j // sw.
        grouped = ops.reshape(x, (batch, height // sh, sh, width // sw, sw * channels))
    for i in range(kh):
        for j in range(kw):
            if phased and i // sh + rows <= height // sh and j // sw + cols <= width // sw:
                start = (0, i // sh, i % sh, j // sw, (j % sw) * channels)
                window = ops.slice(grouped, start, (batch, rows, 1, cols, channels))
            else:
                window = x[:, i : i + sh * (rows - 1) + 1 : sh, j : j + sw * (cols - 1) + 1 : sw, :]
            windows.append(ops.reshape(window, (-1, channels)))
    return windows


def _filter_gradient(x, upstream, kernel_shape, strides, padding, out_size):
    """d(loss)/d(kernel) of a channels-last conv, one matrix product per kernel tap."""
    kh, kw, cin, cout = kernel_shape
    if padding == "same":
        x = ops.pad(x, [[0, 0], [(kh - 1) // 2, kh // 2], [(kw - 1) // 2, kw // 2], [0, 0]])
    flat_upstream = ops.reshape(upstream, (-1, cout))
    taps = [
        ops.einsum("ni,nj->ij", window, flat_upstream)
        for window in _tap_windows(x, (kh, kw), strides, out_size)
    ]
    return ops.reshape(ops.stack(taps), (kh, kw, cin, cout))


def conv2d_matmul_filter_grad(x, kernel, strides=(1, 1), padding="valid"):
    """`ops.conv(x, kernel, strides, padding)` (channels-last, undilated) whose kernel
    gradient is computed per kernel tap with matrix products.

    The forward pass and the input gradient (`ops.conv_transpose`, the same transposed
    convolution autodiff uses) are unchanged; only the kernel gradient takes another
    route. `padding="same"` is supported at stride 1 with odd kernels (where it equals
    symmetric zero padding).
    """
    strides = tuple(strides) if isinstance(strides, (tuple, list)) else (strides, strides)
    if padding not in ("valid", "same"):
        raise ValueError(f"`padding` must be 'valid' or 'same'. Received: padding={padding!r}")
    if padding == "same" and (
        strides != (1, 1) or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0
    ):
        raise ValueError(
            "`padding='same'` needs stride 1 and an odd kernel here. Received: "
            f"strides={strides}, kernel shape {tuple(kernel.shape)}"
        )
    kernel_shape = tuple(kernel.shape)

    @ops.custom_gradient
    def conv(x, kernel):
        outputs = ops.conv(x, kernel, strides=strides, padding=padding)
        out_size = tuple(outputs.shape[1:3])  # static here, whatever the upstream shows

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            output_padding = None
            if padding == "valid":
                output_padding = [
                    size - ((out - 1) * stride + k)
                    for size, out, stride, k in zip(
                        x.shape[1:3], out_size, strides, kernel_shape[:2]
                    )
                ]
            x_grad = ops.conv_transpose(
                upstream,
                kernel,
                strides=strides,
                padding=padding,
                output_padding=output_padding,
            )
            kernel_grad = _filter_gradient(x, upstream, kernel_shape, strides, padding, out_size)
            return x_grad, ops.cast(kernel_grad, kernel.dtype)

        return outputs, grad

    return conv(x, kernel)
