"""Layers that `convert_model` copies unchanged: refused when they pad, resample or slice
inside (issue 32, E9), copied when they act position by position."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfposenc.convert import convert_model
from tfposenc.convert.graph import Graph
from tfposenc.convert.spatial import check_copied

SIZE = 16


class ShiftByPad(keras.layers.Layer):
    """A custom layer calling `tf.pad`: the map moves by one pixel, zeros come in."""

    def call(self, x):
        return tf.pad(x, [[0, 0], [1, 0], [1, 0], [0, 0]])[:, :-1, :-1, :]


class Swish(keras.layers.Layer):
    """A harmless custom layer: position by position."""

    def call(self, x):
        return x * keras.ops.sigmoid(x)


def sandwich(middle, size=SIZE):
    """conv, strided conv, `middle`, strided conv, global pooling, dense."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="c2")(x)
    x = middle(x)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="c3")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))


def images(size=SIZE, batch=2):
    return np.random.default_rng(0).normal(size=(batch, size, size, 3)).astype("float32")


def pooled_roll_gap(model, x, roll):
    reference = np.asarray(model(x))
    shifted = np.asarray(model(np.roll(x, roll, axis=(1, 2))))
    return np.abs(shifted - reference).max() / np.abs(reference).max()


def roll_lambda(t):
    # Rolls the map and zeroes its first row: position-dependent, no size change.
    rows = keras.ops.arange(8)[None, :, None, None] > 0
    return keras.ops.roll(t, 1, axis=1) * keras.ops.cast(rows, t.dtype)


UNFOLLOWABLE = {
    "lambda": (
        lambda x: keras.layers.Lambda(roll_lambda, name="lam")(x),
        r"layer 'lam' \(Lambda\): its output does not follow a circular shift",
    ),
    "slice": (
        lambda x: x[:, 2:, 2:, :],
        r"operation 'get_item.*' \(GetItem\): it changes the spatial size from 8x8 to 6x6",
    ),
    "custom_tf_pad": (
        lambda x: ShiftByPad(name="shift_by_pad")(x),
        r"layer 'shift_by_pad' \(ShiftByPad\): its output does not follow",
    ),
    "resizing": (
        lambda x: keras.layers.Resizing(16, 16, name="resize")(x),
        r"layer 'resize' \(Resizing\): it changes the spatial size from 8x8 to 16x16",
    ),
    "conv_transpose": (
        lambda x: keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", name="up")(x),
        r"layer 'up' \(Conv2DTranspose\): it changes the spatial size from 8x8 to 16x16",
    ),
    "conv_transpose_stride_1": (
        lambda x: keras.layers.Conv2DTranspose(4, 3, padding="same", name="deconv")(x),
        r"layer 'deconv' \(Conv2DTranspose\): its output does not follow",
    ),
    "cropping": (
        lambda x: keras.layers.Cropping2D(1, name="crop")(x),
        r"layer 'crop' \(Cropping2D\): it changes the spatial size from 8x8 to 6x6",
    ),
}


@pytest.mark.parametrize("case", sorted(UNFOLLOWABLE))
@pytest.mark.parametrize("padding_mode, downsampling", [("circular", "aps"), ("reflect", "stride")])
def test_a_layer_that_pads_resamples_or_slices_inside_is_refused(case, padding_mode, downsampling):
    middle, match = UNFOLLOWABLE[case]
    model = sandwich(middle)
    with pytest.raises(ValueError, match=match):
        convert_model(model, padding_mode, downsampling)
    converted, changes = convert_model(model)  # a plain copy still works
    np.testing.assert_allclose(converted(images()), model(images()), atol=1e-6)


def harmless(x):
    a = keras.layers.Activation("relu")(keras.layers.BatchNormalization()(x))
    b = keras.layers.Rescaling(0.5, offset=1.0)(x)
    c = keras.layers.Normalization(mean=0.5, variance=2.0)(x)
    d = keras.layers.Lambda(lambda t: t * 2.0)(x)
    e = keras.layers.Concatenate()([x[..., :2] + 1.0, Swish()(x)[..., 2:]])
    f = keras.layers.LayerNormalization()(keras.layers.Dense(4)(x))
    return keras.layers.Add()([a, b, c, d, e, f])


def test_layers_that_act_position_by_position_convert_and_stay_invariant():
    model = sandwich(harmless)
    converted, changes = convert_model(model, "circular", "aps")
    x = images()
    for roll in [(1, 0), (0, 1), (3, 7)]:
        assert pooled_roll_gap(converted, x, roll) <= 1e-5, roll
    assert pooled_roll_gap(model, x, (1, 1)) > 1e-3  # the original is not invariant


def test_reshape_and_dense_after_global_pooling_are_copied():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    squeezed = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)  # SE block
    excite = keras.layers.Conv2D(8, 1, activation="sigmoid")(squeezed)
    x = keras.layers.Multiply()([x, excite])
    x = keras.layers.GlobalMaxPooling2D()(x)
    x = keras.layers.Reshape((1, 1, 8))(keras.layers.Dense(8)(x))
    outputs = keras.layers.Flatten()(keras.layers.Dropout(0.5)(x))
    model = keras.Model(inputs, outputs)
    converted, _ = convert_model(model, "circular", "aps")
    assert pooled_roll_gap(converted, images(), (5, 3)) <= 1e-5


def test_flatten_of_a_map_is_a_read_out_and_is_copied():
    # VGG's top: a converted model whose output is not pooled (so not invariant).
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    converted, changes = convert_model(model, "reflect")
    assert [name for name, _, _ in changes] == ["conv_pad", "conv"]
    assert converted(images()).shape == (2, 2)


def test_a_zero_pad_the_conversion_cannot_repad_is_refused():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3)(inputs)
    padded = keras.layers.ZeroPadding2D(1, name="border")(x)
    x = keras.layers.Add()([padded, keras.layers.Conv2D(4, 1)(inputs)])
    model = keras.Model(inputs, x)
    with pytest.raises(ValueError, match=r"layer 'border': its zero pad feeds .*'add"):
        convert_model(model, "circular")
    convert_model(model, "zero", "blur")  # zeros stay zeros: nothing to follow


@pytest.mark.parametrize(
    "operation, expected",
    [
        (lambda: keras.layers.Lambda(lambda t: t[:, :, ::-1]), "does not follow"),
        (lambda: keras.layers.Lambda(lambda t: keras.ops.mean(t, axis=(1, 2))), None),
        (
            lambda: keras.layers.Lambda(lambda t: keras.ops.sum(t[:, :4], axis=(1, 2))),
            "stay unchanged",
        ),
        (lambda: keras.layers.Permute((1, 2, 3)), None),
        (lambda: keras.layers.UpSampling2D(2), "from 8x8 to 16x16"),
    ],
)
def test_check_copied_decides_by_what_the_layer_does_to_positions(operation, expected):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, operation()(inputs))
    (node,) = Graph(model.outputs).nodes
    if expected is None:
        check_copied(node)
    else:
        with pytest.raises(ValueError, match=expected):
            check_copied(node)


def test_a_layer_on_a_map_of_unknown_size_is_refused_unless_position_wise():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.ReLU()(x)
    model = keras.Model(inputs, ShiftByPad(name="shift")(x))
    with pytest.raises(ValueError, match=r"layer 'shift'.*a map of unknown size"):
        convert_model(model, "circular")


def test_a_pad_then_crop_shift_converts_with_the_pad_in_the_new_mode():
    # NASNet's adjust block: pad bottom/right, crop top/left = a one-pixel shift.
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name="pad")(inputs)
    x = keras.layers.Cropping2D(((1, 0), (1, 0)), name="crop")(x)
    model = keras.Model(inputs, x)
    x = images(8)
    for mode, np_mode in [("circular", "wrap"), ("reflect", "reflect"), ("zero", "constant")]:
        converted, _ = convert_model(model, mode, "blur" if mode == "zero" else "stride")
        expected = np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)), mode=np_mode)[:, 1:, 1:]
        np.testing.assert_allclose(converted(x), expected, atol=1e-6)
    crop_only = keras.Model(inputs, keras.layers.Cropping2D(1, name="crop")(inputs))
    with pytest.raises(ValueError, match="layer 'crop'"):
        convert_model(crop_only, "zero", "blur")


class FailsEagerly(keras.layers.Layer):
    """Builds symbolically, raises a TypeError when run on real values."""

    def call(self, x):
        if tf.executing_eagerly():
            raise TypeError("no eager run")
        return x


def test_any_failure_while_converting_a_layer_is_a_value_error_naming_it():
    with pytest.raises(
        ValueError, match=r"(?s)layer 'fragile': rebuilding it failed \(TypeError.*no eager run"
    ):
        convert_model(sandwich(lambda x: FailsEagerly(name="fragile")(x)), "circular")
