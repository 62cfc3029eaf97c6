import itertools

import keras
import numpy as np
import pytest

from tests.harness import check_layer
from tfposenc.layers import Padding2D

NP_MODES = {"zero": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}

POSTER_INPUT = np.arange(1, 17, dtype="float32").reshape(4, 4)
POSTER = {
    "zero": [
        [0, 0, 0, 0, 0, 0],
        [0, 1, 2, 3, 4, 0],
        [0, 5, 6, 7, 8, 0],
        [0, 9, 10, 11, 12, 0],
        [0, 13, 14, 15, 16, 0],
        [0, 0, 0, 0, 0, 0],
    ],
    "reflect": [
        [6, 5, 6, 7, 8, 7],
        [2, 1, 2, 3, 4, 3],
        [6, 5, 6, 7, 8, 7],
        [10, 9, 10, 11, 12, 11],
        [14, 13, 14, 15, 16, 15],
        [10, 9, 10, 11, 12, 11],
    ],
    "replicate": [
        [1, 1, 2, 3, 4, 4],
        [1, 1, 2, 3, 4, 4],
        [5, 5, 6, 7, 8, 8],
        [9, 9, 10, 11, 12, 12],
        [13, 13, 14, 15, 16, 16],
        [13, 13, 14, 15, 16, 16],
    ],
}


@pytest.mark.parametrize("mode", list(NP_MODES))
def test_layer_round(mode):
    check_layer(lambda: Padding2D(((1, 2), (0, 3)), padding_mode=mode), (2, 5, 6, 3), (2, 8, 9, 3))


@pytest.mark.parametrize("mode", sorted(POSTER))
def test_poster_matrices(mode):
    out = Padding2D(1, padding_mode=mode)(POSTER_INPUT[None, :, :, None])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out)[0, :, :, 0], POSTER[mode])


@pytest.mark.parametrize("mode", list(NP_MODES))
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_matches_numpy_pad(mode, data_format):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 4, 3)).astype("float32")
    if data_format == "channels_first":
        x = x.transpose(0, 3, 1, 2)
    pads = [p for p in itertools.product(range(4), repeat=4) if sum(p) % 3 == 0 or len(set(p)) == 1]
    if keras.backend.backend() != "tensorflow":
        # Every new shape compiles anew in JAX's eager mode: a spread-out fifth of the
        # 94 cases (all sizes 0..3 on every side still occur) keeps the run short.
        pads = pads[::5]
    for top, bottom, left, right in pads:
        padding = ((top, bottom), (left, right))
        out = Padding2D(padding, padding_mode=mode, data_format=data_format)(x)
        spatial = [(top, bottom), (left, right)]
        np_pad = [(0, 0)] + (
            spatial + [(0, 0)] if data_format == "channels_last" else [(0, 0)] + spatial
        )
        expected = np.pad(x, np_pad, mode=NP_MODES[mode])
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(out), expected, err_msg=str(padding)
        )


def test_padding_forms_normalised():
    assert Padding2D(2).padding == ((2, 2), (2, 2))
    assert Padding2D((1, 3)).padding == ((1, 1), (3, 3))
    assert Padding2D(((0, 1), (2, 3))).padding == ((0, 1), (2, 3))


@pytest.mark.tensorflow_only
def test_gradient_of_circular_and_replicate_counts_copies():
    # d(sum(pad(x)))/dx counts how often each pixel appears in the padded output.
    import tensorflow as tf

    x = tf.constant(np.ones((1, 3, 3, 1), "float32"))
    for mode in ("replicate", "circular"):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(Padding2D(1, padding_mode=mode)(x))
        grad = tape.gradient(y, x).numpy()[0, :, :, 0]
        ones = np.ones((3, 3))
        expected = np.pad(np.arange(9.0).reshape(3, 3), 1, mode=NP_MODES[mode])
        counts = np.array(
            [[np.sum(expected == v) for v in row] for row in np.arange(9.0).reshape(3, 3)]
        )
        np.testing.assert_array_equal(grad, counts * ones)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"padding_mode": "mirror"}, "padding_mode.*Received: padding_mode='mirror'"),
        ({"padding": -1}, "non-negative.*Received: padding=-1"),
        ({"padding": (1, 2, 3)}, r"Received: padding=\(1, 2, 3\)"),
        ({"padding": 1.5}, "Received: padding=1.5"),
        ({"data_format": "nhwc"}, "Received: data_format='nhwc'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Padding2D(**kwargs)


def test_reflect_pad_must_be_smaller_than_size():
    with pytest.raises(ValueError, match=r"reflect pad must be smaller.*Received: padding"):
        Padding2D(4, padding_mode="reflect")(np.zeros((1, 4, 4, 1), "float32"))
    with pytest.raises(ValueError, match="circular pad"):
        Padding2D(5, padding_mode="circular")(np.zeros((1, 4, 4, 1), "float32"))
    # A reflect pad of size - 1 is allowed, as in PyTorch.
    out = Padding2D(3, padding_mode="reflect")(np.zeros((1, 4, 4, 1), "float32"))
    assert out.shape == (1, 10, 10, 1)


@pytest.mark.tensorflow_only
def test_size_known_only_at_trace_time_is_checked():
    import tensorflow as tf

    layer = Padding2D(2, padding_mode="reflect")
    layer.build((None, None, None, 1))  # sizes unknown when built
    traced = tf.function(layer)
    with pytest.raises(ValueError, match="reflect pad must be smaller"):
        traced(tf.zeros((1, 2, 2, 1)))
