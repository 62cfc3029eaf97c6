import keras
import numpy as np
import pytest

from tests.harness import check_layer
from tfposenc.layers import BlurPool2D, binomial_filter


def test_layer_round():
    check_layer(lambda: BlurPool2D(), (2, 8, 8, 3), (2, 4, 4, 3))


def test_binomial_filters():
    np.testing.assert_allclose(binomial_filter(4)[0] * 64, [1, 3, 3, 1])
    np.testing.assert_allclose(binomial_filter(3), np.outer([1, 2, 1], [1, 2, 1]) / 16)
    for k in range(1, 8):
        assert abs(binomial_filter(k).sum() - 1) < 1e-6


@pytest.mark.parametrize("mode", ["reflect", "zero", "replicate", "circular"])
def test_constant_image_stays_constant(mode):
    out = keras.ops.convert_to_numpy(
        BlurPool2D(padding_mode=mode)(np.full((1, 9, 9, 2), 3.0, "float32"))
    )
    if mode == "zero":
        assert out[0, 2, 2, 0] == pytest.approx(3.0)  # interior only
    else:
        np.testing.assert_allclose(out, 3.0, rtol=1e-6)


def test_hand_computed_case():
    # 1D signal [0, 0, 8, 0] per row, filter 3 = [1, 2, 1] / 4, stride 2, reflect pad (1, 1):
    # padded [0, 0, 0, 8, 0, 8]; outputs at 0 and 2: (0 + 0 + 0) / 4 = 0 and (0 + 16 + 0) / 4 = 4
    # on both axes with a constant column profile, so the 2D output is the outer product.
    x = np.zeros((1, 4, 4, 1), "float32")
    x[0, :, 2, 0] = 8.0
    out = keras.ops.convert_to_numpy(BlurPool2D(filter_size=3)(x))[0, :, :, 0]
    np.testing.assert_allclose(out, [[0, 4], [0, 4]])
    # Filter 4 = [1, 3, 3, 1] / 8 with pads (1, 2): padded row [0, 0, 0, 8, 0, 8, 0]
    # -> index 0: (0 + 0 + 0 + 8) / 8 = 1; index 2: (0*1 + 8*3 + 0*3 + 8*1) / 8 = 4.
    out = keras.ops.convert_to_numpy(BlurPool2D(filter_size=4)(x))[0, :, :, 0]
    np.testing.assert_allclose(out, [[1, 4], [1, 4]])


@pytest.mark.parametrize("size, expected", [(7, 4), (8, 4), (9, 5), (2, 1)])
def test_output_size_odd_and_even(size, expected):
    assert BlurPool2D(filter_size=3)(np.zeros((1, size, size, 1), "float32")).shape == (
        1,
        expected,
        expected,
        1,
    )
    assert (
        BlurPool2D(filter_size=4, padding_mode="zero")(
            np.zeros((1, size, size, 1), "float32")
        ).shape[1]
        == expected
    )


def test_filter_size_one_subsamples():
    x = np.arange(36, dtype="float32").reshape(1, 6, 6, 1)
    out = keras.ops.convert_to_numpy(BlurPool2D(filter_size=1)(x))
    np.testing.assert_array_equal(out, x[:, ::2, ::2])


def test_channels_first():
    x = np.random.default_rng(0).normal(size=(1, 8, 8, 3)).astype("float32")
    last = keras.ops.convert_to_numpy(BlurPool2D()(x))
    first = keras.ops.convert_to_numpy(
        BlurPool2D(data_format="channels_first")(x.transpose(0, 3, 1, 2))
    )
    np.testing.assert_allclose(first.transpose(0, 2, 3, 1), last, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"filter_size": 0}, "Received: filter_size=0"),
        ({"filter_size": 8}, "Received: filter_size=8"),
        ({"strides": 0}, "Received: strides=0"),
        ({"padding_mode": "edge"}, "Received: padding_mode='edge'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BlurPool2D(**kwargs)
