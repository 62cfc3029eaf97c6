import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.harness import check_layer
from tfposenc.layers import AdaptivePolyphaseSampling2D

PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


def oracle(x, p=2):
    """Per example: the four components, their p-norms in float64, the first argmax."""
    indices, outputs = [], []
    for example in x.astype("float64"):
        components = [example[dy::2, dx::2, :] for dy, dx in PHASES]
        if math.isinf(p):
            norms = [np.abs(c).max() for c in components]
        else:
            norms = [np.sum(np.abs(c) ** p) ** (1 / p) for c in components]
        best = int(np.argmax(norms))  # numpy returns the first maximum
        indices.append(best)
        outputs.append(components[best])
    return np.array(indices), np.stack(outputs)


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_layer_round(data_format):
    shape = (2, 8, 6, 3) if data_format == "channels_last" else (2, 3, 8, 6)
    expected = (2, 4, 3, 3) if data_format == "channels_last" else (2, 3, 4, 3)
    check_layer(lambda: AdaptivePolyphaseSampling2D(data_format=data_format), shape, expected)


@pytest.mark.parametrize("p", [2, 1, 3, 0.5, float("inf")])
def test_matches_numpy_oracle(p):
    x = np.random.default_rng(1).normal(size=(6, 8, 6, 3)).astype("float32")
    layer = AdaptivePolyphaseSampling2D(p=p)
    expected_index, expected = oracle(x, p)
    assert len(set(expected_index.tolist())) > 1  # the batch really mixes phases
    index = to_numpy(layer.select_index(x))
    assert index.dtype == np.int32
    np.testing.assert_array_equal(index, expected_index)
    np.testing.assert_array_equal(to_numpy(layer(x)), expected)


@pytest.mark.parametrize("p", [2, 1, float("inf")])
def test_ties_go_to_the_first_component(p):
    # Integer values keep every sum exact, so these ties are ties in float32 too.
    rng = np.random.default_rng(2)
    x = rng.integers(-2, 3, size=(6, 4, 4, 2)).astype("float32")
    x[0] = 0.0  # all four components tie -> 0
    x[1] = 1.0  # constant image: all tie -> 0
    x[2, 0::2, :] = 0.0  # rows of phase 0 empty: (1, 0) and (1, 1) tie ...
    x[2, 1::2, 1::2] = x[2, 1::2, 0::2]  # ... with equal components -> 2
    x[3, 1::2, :] = 0.0  # (0, 0) empty; (0, 1) largest ...
    x[3, 0::2, 0::2] = 0.0
    x[3, 0::2, 1::2] = 5.0
    x[3, 1::2, 1::2] = 5.0  # ... tied by (1, 1) -> 1
    x[4] = 0.0
    x[4, 0::2, 1::2] = [[[1, 2], [3, 4]], [[0, 0], [0, 0]]]
    x[4, 1::2, 0::2] = [[[0, 0], [4, 3]], [[2, 1], [0, 0]]]  # a permutation: tie -> 1
    expected_index, expected = oracle(x, p)
    np.testing.assert_array_equal(expected_index[:5], [0, 0, 2, 1, 1])
    layer = AdaptivePolyphaseSampling2D(p=p)
    np.testing.assert_array_equal(to_numpy(layer.select_index(x)), expected_index)
    np.testing.assert_array_equal(to_numpy(layer(x)), expected)


def test_channels_first_matches_channels_last():
    x = np.random.default_rng(3).normal(size=(4, 6, 8, 3)).astype("float32")
    last = AdaptivePolyphaseSampling2D(data_format="channels_last")
    first = AdaptivePolyphaseSampling2D(data_format="channels_first")
    x_first = x.transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(
        to_numpy(first.select_index(x_first)), to_numpy(last.select_index(x))
    )
    np.testing.assert_array_equal(to_numpy(first(x_first)).transpose(0, 2, 3, 1), oracle(x)[1])


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_circular_shift_moves_the_output_exactly(data_format):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 8, 10, 3)).astype("float32")
    layer = AdaptivePolyphaseSampling2D(data_format=data_format)

    def run(images):  # channels_last in and out, the layer in `data_format`
        if data_format == "channels_first":
            images = images.transpose(0, 3, 1, 2)
        index, out = to_numpy(layer.select_index(images)), to_numpy(layer(images))
        return index, (out.transpose(0, 2, 3, 1) if data_format == "channels_first" else out)

    index, out = run(x)
    dy, dx = index // 2, index % 2
    shifts = [(1, 0), (0, 1), (1, 1), (3, 2), (2, 5), (7, 9), (-1, 3)]
    shifts += [tuple(s) for s in rng.integers(-9, 10, size=(5, 2))]
    for sy, sx in shifts:
        shifted_index, shifted_out = run(np.roll(x, (sy, sx), axis=(1, 2)))
        np.testing.assert_array_equal(shifted_index, 2 * ((dy + sy) % 2) + (dx + sx) % 2)
        for b in range(len(x)):
            half_shift = ((dy[b] + sy) // 2, (dx[b] + sx) // 2)
            np.testing.assert_array_equal(
                shifted_out[b], np.roll(out[b], half_shift, axis=(0, 1)), err_msg=str((sy, sx))
            )
        # Hence global pooling is invariant.
        np.testing.assert_allclose(shifted_out.mean((1, 2)), out.mean((1, 2)), atol=1e-6)


def test_fixed_stride_is_not_shift_invariant():
    # The control: plain x[:, ::2, ::2] changes under an odd shift, so the test above
    # is about the adaptive choice.
    x = np.random.default_rng(5).normal(size=(2, 8, 8, 3)).astype("float32")
    shifted = np.roll(x, (1, 0), axis=(1, 2))
    assert not np.allclose(shifted[:, ::2, ::2].mean((1, 2)), x[:, ::2, ::2].mean((1, 2)))


def test_apply_index_takes_the_given_component():
    x = np.random.default_rng(6).normal(size=(4, 6, 4, 5)).astype("float32")
    out = to_numpy(AdaptivePolyphaseSampling2D().apply_index(x, np.array([3, 0, 1, 2])))
    for b, k in enumerate([3, 0, 1, 2]):
        dy, dx = PHASES[k]
        np.testing.assert_array_equal(out[b], x[b, dy::2, dx::2, :])


def test_list_form_uses_the_first_tensors_index():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(8, 6, 6, 2)).astype("float32")
    other = rng.normal(size=(8, 6, 6, 5)).astype("float32")
    third = rng.normal(size=(8, 6, 6, 1)).astype("float32")
    x_index, x_best = oracle(x)
    other_index, _ = oracle(other)
    assert np.any(x_index != other_index)  # otherwise the test could not fail
    layer = AdaptivePolyphaseSampling2D()
    outputs = layer([x, other, third])
    assert isinstance(outputs, list) and len(outputs) == 3
    np.testing.assert_array_equal(to_numpy(outputs[0]), x_best)
    for tensor, result in ((other, outputs[1]), (third, outputs[2])):
        expected = np.stack(
            [t[dy::2, dx::2] for t, (dy, dx) in zip(tensor, [PHASES[k] for k in x_index])]
        )
        np.testing.assert_array_equal(to_numpy(result), expected)
    # A residual sum of both branches is then shifted exactly with the input.
    for shift in [(1, 0), (1, 3), (4, 5)]:
        main, shortcut = layer(
            [np.roll(x, shift, (1, 2)), np.roll(x[..., :1] * 3.0, shift, (1, 2))]
        )
        np.testing.assert_allclose(
            to_numpy(keras.ops.mean(main + shortcut, axis=(1, 2))),
            (x_best + x_best[..., :1] * 3.0).mean((1, 2)),
            atol=1e-6,
        )


def test_compute_output_shape_both_forms():
    layer = AdaptivePolyphaseSampling2D()
    assert layer.compute_output_shape((None, 8, None, 3)) == (None, 4, None, 3)
    assert layer.compute_output_shape([(2, 8, 6, 3), (2, 8, 6, 7)]) == [(2, 4, 3, 3), (2, 4, 3, 7)]
    first = AdaptivePolyphaseSampling2D(data_format="channels_first")
    assert first.compute_output_shape((2, 3, 8, 6)) == (2, 3, 4, 3)
    main, shortcut = layer([keras.Input((8, 6, 3)), keras.Input((8, 6, 7))])
    assert (tuple(main.shape), tuple(shortcut.shape)) == ((None, 4, 3, 3), (None, 4, 3, 7))


def test_list_form_saves_in_a_model(tmp_path):
    a, b = keras.Input((8, 8, 2)), keras.Input((8, 8, 3))
    main, shortcut = AdaptivePolyphaseSampling2D(p=float("inf"))([a, b])
    model = keras.Model([a, b], [main, shortcut])
    path = str(tmp_path / "aps.keras")
    model.save(path)
    revived = keras.saving.load_model(path)
    rng = np.random.default_rng(8)
    inputs = [rng.normal(size=(2, 8, 8, 2)).astype("float32"), rng.normal(size=(2, 8, 8, 3))]
    for got, want in zip(revived.predict(inputs, verbose=0), model.predict(inputs, verbose=0)):
        np.testing.assert_array_equal(got, want)
    assert revived.layers[-1].get_config()["p"] == float("inf")


@pytest.mark.tensorflow_only
def test_unknown_spatial_size_in_a_traced_function():
    layer = AdaptivePolyphaseSampling2D()
    traced = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 3))])
    x = np.random.default_rng(9).normal(size=(2, 6, 10, 3)).astype("float32")
    np.testing.assert_array_equal(traced(x).numpy(), oracle(x)[1])


@pytest.mark.tensorflow_only
def test_gradient_reaches_only_the_kept_component():
    x = tf.constant(np.random.default_rng(10).normal(size=(3, 4, 6, 2)).astype("float32"))
    layer = AdaptivePolyphaseSampling2D()
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(layer(x))
    grad = tape.gradient(total, x).numpy()
    expected = np.zeros_like(grad)
    for b, k in enumerate(oracle(x.numpy())[0]):
        dy, dx = PHASES[k]
        expected[b, dy::2, dx::2, :] = 1.0
    np.testing.assert_array_equal(grad, expected)


def test_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    x = np.random.default_rng(11).normal(size=(4, 8, 8, 3)).astype("float16")
    out = AdaptivePolyphaseSampling2D()(x)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    np.testing.assert_array_equal(to_numpy(out), oracle(x)[1].astype("float16"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"p": 0}, "Received: p=0"),
        ({"p": -1.5}, r"Received: p=-1\.5"),
        ({"p": "two"}, "Received: p='two'"),
        ({"p": True}, "Received: p=True"),
        ({"p": float("nan")}, "Received: p=nan"),
        ({"data_format": "channels_middle"}, "Received: data_format='channels_middle'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdaptivePolyphaseSampling2D(**kwargs)


@pytest.mark.parametrize(
    "inputs",
    [
        lambda: np.zeros((1, 7, 8, 1), "float32"),
        lambda: keras.Input((8, 5, 1)),
        lambda: [keras.Input((8, 8, 1)), keras.Input((8, 6, 1))],
        lambda: [keras.Input((8, 8, 1)), keras.Input((7, 8, 1))],
    ],
)
def test_odd_or_mismatched_sizes_raise(inputs):
    with pytest.raises(ValueError, match="Received: input_shape="):
        AdaptivePolyphaseSampling2D()(inputs())
