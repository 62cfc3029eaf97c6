import keras
import numpy as np
import pytest

from tfposenc.layers import PaddedConv2D, conv_ops
from tfposenc.layers.conv_ops import (
    MATMUL_GRAD_ENV_VAR,
    conv2d_matmul_filter_grad,
    matmul_filter_grad_applies,
    subsample2d,
)


def numpy_conv_and_grads(x, kernel, upstream, stride, pads):
    """Direct loops: y = conv(pad(x), kernel) at `stride`, and d<y, upstream>/d(x, kernel).

    `pads` is ((top, bottom), (left, right)).
    """
    kh, kw = kernel.shape[:2]
    (top, bottom), (left, right) = pads
    xp = np.pad(x, [(0, 0), (top, bottom), (left, right), (0, 0)])
    rows, cols = upstream.shape[1:3]
    y = np.zeros(upstream.shape)
    x_grad = np.zeros(xp.shape)
    kernel_grad = np.zeros(kernel.shape)
    for i in range(kh):
        for j in range(kw):
            window = xp[
                :,
                i : i + stride * (rows - 1) + 1 : stride,
                j : j + stride * (cols - 1) + 1 : stride,
            ]
            y += np.einsum("nhwc,co->nhwo", window, kernel[i, j])
            kernel_grad[i, j] = np.einsum("nhwc,nhwo->co", window, upstream)
            x_grad[
                :,
                i : i + stride * (rows - 1) + 1 : stride,
                j : j + stride * (cols - 1) + 1 : stride,
            ] += np.einsum("nhwo,co->nhwc", upstream, kernel[i, j])
    x_grad = x_grad[:, top : xp.shape[1] - bottom, left : xp.shape[2] - right]
    return y, x_grad, kernel_grad


@pytest.mark.parametrize("shape", [(2, 8, 6, 3), (2, 7, 9, 3), (1, 1, 4, 2)])
@pytest.mark.parametrize("strides", [(2, 2), (3, 2), (1, 2)])
def test_subsample2d_matches_strided_indexing(shape, strides):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    got = keras.ops.convert_to_numpy(subsample2d(x, *strides))
    np.testing.assert_array_equal(got, x[:, :: strides[0], :: strides[1], :])
    first = x.transpose(0, 3, 1, 2)
    got = keras.ops.convert_to_numpy(subsample2d(first, *strides, data_format="channels_first"))
    np.testing.assert_array_equal(got, first[:, :, :: strides[0], :: strides[1]])


@pytest.mark.tensorflow_only
def test_subsample2d_gradient_scatters_to_kept_positions():
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(1).normal(size=(3, 8, 8, 4)).astype("float32"))
    upstream = np.random.default_rng(2).normal(size=(3, 4, 4, 4)).astype("float32")
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = subsample2d(x, 2, 2)
    grad = tape.gradient(y, x, output_gradients=upstream).numpy()
    expected = np.zeros((3, 8, 8, 4), "float32")
    expected[:, ::2, ::2] = upstream
    np.testing.assert_array_equal(grad, expected)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize(
    "size, kernel_size, stride, padding",
    [
        ((6, 6), (3, 3), 1, "same"),
        ((5, 7), (5, 3), 1, "same"),
        ((10, 10), (3, 3), 2, "valid"),  # even padded size: phase-grouped slices
        ((9, 11), (3, 3), 2, "valid"),  # odd padded size: strided fallback
        ((12, 12), (5, 5), 3, "valid"),
        ((4, 4), (1, 1), 1, "valid"),
    ],
)
def test_matmul_filter_grad_equals_numpy(size, kernel_size, stride, padding):
    import tensorflow as tf

    rng = np.random.default_rng(sum(size) + stride)
    x = rng.normal(size=(3, *size, 4)).astype("float32")
    kernel = rng.normal(size=(*kernel_size, 4, 5)).astype("float32")
    pads = [((k - 1) // 2, k // 2) if padding == "same" else (0, 0) for k in kernel_size]
    rows = (size[0] + sum(pads[0]) - kernel_size[0]) // stride + 1
    cols = (size[1] + sum(pads[1]) - kernel_size[1]) // stride + 1
    upstream = rng.normal(size=(3, rows, cols, 5)).astype("float32")
    xt, kt = tf.constant(x), tf.constant(kernel)
    with tf.GradientTape() as tape:
        tape.watch([xt, kt])
        y = conv2d_matmul_filter_grad(xt, kt, (stride, stride), padding)
    x_grad, kernel_grad = tape.gradient(y, [xt, kt], output_gradients=upstream)
    expected = numpy_conv_and_grads(
        x.astype("float64"), kernel.astype("float64"), upstream.astype("float64"), stride, pads
    )
    for got, want in zip((y.numpy(), x_grad.numpy(), kernel_grad.numpy()), expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.tensorflow_only
def test_matmul_filter_grad_bfloat16_within_rounding():
    import tensorflow as tf

    rng = np.random.default_rng(5)
    x = rng.normal(size=(8, 4, 4, 32)).astype("float32")
    kernel = (0.1 * rng.normal(size=(3, 3, 32, 16))).astype("float32")
    upstream = rng.normal(size=(8, 4, 4, 16)).astype("float32")
    _, x_want, kernel_want = numpy_conv_and_grads(
        x.astype("float64"),
        kernel.astype("float64"),
        upstream.astype("float64"),
        1,
        ((1, 1), (1, 1)),
    )
    xt, kt = tf.constant(x, tf.bfloat16), tf.constant(kernel, tf.bfloat16)
    with tf.GradientTape() as tape:
        tape.watch([xt, kt])
        y = conv2d_matmul_filter_grad(xt, kt, 1, "same")
    grads = tape.gradient(y, [xt, kt], output_gradients=tf.constant(upstream, tf.bfloat16))
    assert y.dtype == tf.bfloat16 and all(g.dtype == tf.bfloat16 for g in grads)
    for got, want in zip(grads, (x_want, kernel_want)):
        got = tf.cast(got, tf.float32).numpy()
        # bfloat16 inputs and outputs: about 3 significant digits.
        np.testing.assert_allclose(got, want, rtol=0.03, atol=0.03 * np.abs(want).max())


def test_matmul_filter_grad_bad_padding():
    x, kernel = np.zeros((1, 4, 4, 1), "float32"), np.zeros((3, 3, 1, 1), "float32")
    with pytest.raises(ValueError, match="Received: padding='causal'"):
        conv2d_matmul_filter_grad(x, kernel, 1, "causal")
    with pytest.raises(ValueError, match="strides=\\(2, 2\\)"):
        conv2d_matmul_filter_grad(x, kernel, 2, "same")


@pytest.mark.tensorflow_only
def test_where_the_matmul_gradient_applies(monkeypatch):
    small, large = (None, 8, 8, 256), (None, 16, 16, 128)
    assert matmul_filter_grad_applies(small, "bfloat16", "channels_last", (1, 1), 1)
    assert not matmul_filter_grad_applies(large, "bfloat16", "channels_last", (1, 1), 1)
    assert not matmul_filter_grad_applies(small, "float32", "channels_last", (1, 1), 1)
    assert not matmul_filter_grad_applies(small, "bfloat16", "channels_first", (1, 1), 1)
    assert not matmul_filter_grad_applies(small, "bfloat16", "channels_last", (2, 2), 1)
    assert not matmul_filter_grad_applies(
        (None, None, 8, 4), "bfloat16", "channels_last", (1, 1), 1
    )
    monkeypatch.setattr(conv_ops, "_gpu_visible", lambda: True)  # cuDNN: not measured
    assert not matmul_filter_grad_applies(small, "bfloat16", "channels_last", (1, 1), 1)
    monkeypatch.undo()
    monkeypatch.setenv(MATMUL_GRAD_ENV_VAR, "0")
    assert not matmul_filter_grad_applies(small, "bfloat16", "channels_last", (1, 1), 1)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize(
    "stride, mode", [(1, "zero"), (2, "zero"), (1, "circular"), (2, "reflect")]
)
def test_padded_conv_training_gradients_same_either_way(monkeypatch, stride, mode):
    import tensorflow as tf

    rng = np.random.default_rng(stride)
    x = tf.constant(rng.normal(size=(4, 8, 8, 16)).astype("float32"))
    upstream = rng.normal(size=(4, 8 // stride, 8 // stride, 8)).astype("float32")
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = PaddedConv2D(8, 3, strides=stride, padding_mode=mode, use_bias=True)
        layer.build(x.shape)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert layer._matmul_filter_grad(x, training=True)
    assert not layer._matmul_filter_grad(x, training=False)
    results = []
    for env in ("1", "0"):
        monkeypatch.setenv(MATMUL_GRAD_ENV_VAR, env)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
        grads = tape.gradient(
            y, [x, layer.kernel, layer.bias], output_gradients=tf.cast(upstream, y.dtype)
        )
        results.append([tf.cast(t, tf.float32).numpy() for t in (y, *grads)])
    for fast, plain in zip(*results):
        np.testing.assert_allclose(fast, plain, rtol=0.02, atol=0.02 * np.abs(plain).max())
