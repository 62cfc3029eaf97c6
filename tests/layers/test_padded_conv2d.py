import keras
import numpy as np
import pytest

from tests.harness import check_layer
from tfposenc.layers import CONV_PADDING_MODES, PaddedConv2D

NP_MODES = {"zero": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def numpy_conv(x, kernel, bias, stride, dilation, mode):
    """Reference: pad as PyTorch's padding=d*(k-1)//2, then a direct valid convolution."""
    k = kernel.shape[0]
    pad = 0 if mode == "valid" else dilation * (k - 1) // 2
    np_mode = "constant" if mode in ("partial", "valid") else NP_MODES[mode]
    xp = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)], mode=np_mode)
    mask = np.pad(np.ones(x.shape[1:3]), pad, mode="constant")
    span = dilation * (k - 1) + 1
    out_h = (xp.shape[1] - span) // stride + 1
    out_w = (xp.shape[2] - span) // stride + 1
    out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[-1]))
    for i in range(out_h):
        for j in range(out_w):
            rows = slice(i * stride, i * stride + span, dilation)
            cols = slice(j * stride, j * stride + span, dilation)
            patch = xp[:, rows, cols, :]
            value = np.einsum("bhwc,hwco->bo", patch, kernel)
            if mode == "partial":
                value = value * (k * k) / mask[rows, cols].sum()
            out[:, i, j, :] = value + bias
    return out


@pytest.mark.parametrize("mode", CONV_PADDING_MODES)
@pytest.mark.parametrize(
    "kernel_size, stride, dilation",
    [(3, 1, 1), (3, 2, 1), (5, 2, 1), (3, 1, 2), (7, 2, 1), (1, 2, 1)],
)
def test_matches_numpy_reference(mode, kernel_size, stride, dilation):
    rng = np.random.default_rng(kernel_size * 10 + stride + dilation)
    x = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    layer = PaddedConv2D(
        4,
        kernel_size,
        strides=stride,
        dilation_rate=dilation,
        padding_mode=mode,
        bias_initializer="random_normal",
    )
    out = keras.ops.convert_to_numpy(layer(x))
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in layer.weights)
    expected = numpy_conv(x.astype("float64"), kernel, bias, stride, dilation, mode)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_stride_two_samples_pytorch_phase_not_keras_same():
    # A centred 3x3 identity-like kernel picks x[2i, 2j] under PyTorch's padding.
    x = np.arange(64, dtype="float32").reshape(1, 8, 8, 1)
    layer = PaddedConv2D(1, 3, strides=2, use_bias=False)
    layer.build(x.shape)
    kernel = np.zeros((3, 3, 1, 1), "float32")
    kernel[1, 1] = 1.0
    layer.set_weights([kernel])
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(layer(x))[0, :, :, 0], x[0, ::2, ::2, 0]
    )
    same = keras.layers.Conv2D(1, 3, strides=2, padding="same", use_bias=False)
    same.build(x.shape)
    same.set_weights([kernel])
    assert not np.array_equal(
        keras.ops.convert_to_numpy(same(x)), keras.ops.convert_to_numpy(layer(x))
    )


@pytest.mark.parametrize("stride", [1, 2])
def test_partial_padding_keeps_constant_input_constant(stride):
    layer = PaddedConv2D(
        2, 3, strides=stride, padding_mode="partial", use_bias=False, kernel_initializer="ones"
    )
    out = keras.ops.convert_to_numpy(layer(np.full((1, 7, 7, 3), 2.0, "float32")))
    np.testing.assert_allclose(out, np.full_like(out, 2.0 * 9 * 3), rtol=1e-6)
    zero = PaddedConv2D(
        2, 3, strides=stride, padding_mode="zero", use_bias=False, kernel_initializer="ones"
    )
    border = keras.ops.convert_to_numpy(zero(np.full((1, 7, 7, 3), 2.0, "float32")))
    assert border[0, 0, 0, 0] < out[0, 0, 0, 0]


@pytest.mark.parametrize("mode", CONV_PADDING_MODES)
def test_layer_round(mode):
    expected = (2, 4, 4, 5) if mode != "valid" else (2, 3, 3, 5)
    check_layer(lambda: PaddedConv2D(5, 3, strides=2, padding_mode=mode), (2, 8, 8, 3), expected)


@pytest.mark.parametrize("mode", ["zero", "reflect", "partial"])
def test_channels_first_matches_channels_last(mode):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 9, 9, 3)).astype("float32")
    last = PaddedConv2D(4, 3, strides=2, padding_mode=mode, data_format="channels_last")
    y_last = keras.ops.convert_to_numpy(last(x))
    first = PaddedConv2D(4, 3, strides=2, padding_mode=mode, data_format="channels_first")
    first.build((2, 3, 9, 9))
    first.set_weights(last.get_weights())
    y_first = keras.ops.convert_to_numpy(first(x.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(y_first.transpose(0, 2, 3, 1), y_last, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"padding_mode": "same"}, "padding_mode.*Received: padding_mode='same'"),
        ({"padding": "same"}, "Received: padding='same'"),
        ({"filters": 0}, "Received: filters=0"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"filters": 4, "kernel_size": 3}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        PaddedConv2D(**args)


def test_reflect_on_too_small_input():
    with pytest.raises(ValueError, match="reflect pad must be smaller"):
        PaddedConv2D(2, 5, padding_mode="reflect")(np.zeros((1, 2, 2, 1), "float32"))


@pytest.mark.tensorflow_only
def test_one_by_one_stride_two_gradient_at_size_118():
    # TF 2.21's oneDNN conv corrupted the heap here; the layer subsamples first instead.
    import tensorflow as tf

    layer = PaddedConv2D(4, 1, strides=2, use_bias=False)
    x = tf.Variable(np.random.default_rng(0).normal(size=(2, 118, 118, 2)).astype("float32"))
    with tf.GradientTape() as tape:
        y = layer(x)
        loss = tf.reduce_sum(y * y)
    grad = tape.gradient(loss, x).numpy()
    kernel = layer.get_weights()[0][0, 0]
    expected = np.einsum("bhwc,co->bhwo", x.numpy()[:, ::2, ::2], kernel)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert np.all(grad[:, 1::2] == 0) and np.any(grad[:, ::2] != 0)
