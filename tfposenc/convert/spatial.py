"""What a layer that `convert_model` copies unchanged does to spatial positions.

The converter rewrites borders and subsampling in the layers it knows: convs, pools
and zero pads. Every other layer is copied as it is, which is faithful only if that
layer has no border and no sampling grid of its own. A layer that pads, resamples,
crops or slices inside (a custom layer calling `tf.pad`, a `Lambda`, a slice
`x[:, 1:]`, `Resizing`, `Conv2DTranspose`, `UpSampling2D`) would keep its zero border
or its grid under the conversion: the converted model would be neither what was asked
for nor, with circular padding and APS, invariant to shifts. `check_copied` refuses it.

A layer is decided by what it does to positions. One that sees no feature map (a
`Dense` after pooling, a `Reshape` of pooled features) passes, as do the layers known
to act position by position (activations, normalisations over channels, `Add`,
`Concatenate` of channels, dropout, `Rescaling`, `Normalization`) or to pool globally,
and `Flatten`, a read-out of every position (the output is then not shift invariant,
and the conversion claims no invariance for it). Any other layer or `keras.ops` call on
a feature map is run on a random map and on that map rolled circularly by one pixel
along each axis: it must give the rolled output (a map of the same size) or the same
output (no map), else it is refused.
"""

import keras
import numpy as np

from tfposenc.layers import (
    AdaptivePolyphaseSampling2D,
    BatchNormalization,
    BlurPool2D,
    ChannelAblation,
    ChannelShuffle,
    Padding2D,
)

from .padding import CONV_TYPES, POOL_TYPES

# Attributes of a custom layer whose padding or striding lives inside.
SPATIAL_ATTRIBUTES = ("padding", "strides", "pool_size", "kernel_size")

POSITIONWISE = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.PReLU,
    keras.layers.ELU,
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.ActivityRegularization,
    keras.layers.Identity,
    keras.layers.Rescaling,
    keras.layers.Dense,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.Flatten,
    ChannelShuffle,
    ChannelAblation,
)
# tfposenc's own border and sampling layers: a border or sampling chosen explicitly,
# kept as it is (a zero `Padding2D` is re-padded by the converter itself).
KEPT = (Padding2D, BlurPool2D, AdaptivePolyphaseSampling2D)
# Position-wise when their axis is the channel axis only.
CHANNEL_AXIS_LAYERS = (
    keras.layers.BatchNormalization,
    BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.Normalization,
    keras.layers.Concatenate,
    keras.layers.Softmax,
)
ROLLS = ((1, 0), (0, 1))
TOLERANCE = 1e-4  # of the output's largest magnitude (float32 arithmetic)


def spatial_axes(operation):
    if getattr(operation, "data_format", None) == "channels_first":
        return (2, 3)
    if getattr(operation, "data_format", None) == "channels_last":
        return (1, 2)
    return (1, 2) if keras.config.image_data_format() == "channels_last" else (2, 3)


def is_map(tensor, axes):
    """A rank-4 tensor with more than one position: a feature map."""
    shape = tuple(tensor.shape)
    return len(shape) == 4 and not all(shape[axis] == 1 for axis in axes)


def _channel_axis_only(operation, axes):
    axis = getattr(operation, "axis", -1)
    axis = [axis] if isinstance(axis, int) else list(axis)
    channel = 1 if axes == (2, 3) else 3
    return all(a % 4 == channel for a in axis)


def check_copied(node, name=None):
    """Raises `ValueError` if `node`'s operation does something to spatial positions
    that a copy would not convert (see the module docstring). `name` is how the
    error refers to it; its own name by default."""
    operation = node.operation
    name = name or f"layer '{operation.name}'"
    axes = spatial_axes(operation)
    maps = [t for t in node.arguments.keras_tensors if is_map(t, axes)]
    if not maps or isinstance(operation, POSITIONWISE + KEPT):
        return
    if isinstance(operation, CHANNEL_AXIS_LAYERS) and _channel_axis_only(operation, axes):
        return
    kind = type(operation).__name__
    sizes = {tuple(t.shape[axis] for axis in axes) for t in maps}
    if len(sizes) > 1 or None in next(iter(sizes)):
        what = "maps of different sizes" if len(sizes) > 1 else "a map of unknown size"
        raise ValueError(
            f"Cannot convert {name} ({kind}): the conversion cannot tell what it does to "
            f"spatial positions; it takes {what} ({sorted(sizes, key=str)}). Build the "
            "model with a fixed input size, or replace the layer with Keras layers."
        )
    (size,) = sizes
    rng = np.random.default_rng(0)
    values = {
        id(t): rng.normal(size=[2 if d is None else d for d in t.shape]).astype(t.dtype)
        for t in node.arguments.keras_tensors
    }
    reference = _run(node, values)
    out_sizes = [tuple(o.shape[a] for a in axes) if o.ndim == 4 else None for o in reference]
    for out_size in out_sizes:
        if out_size is not None and out_size not in (size, (1, 1)):
            raise ValueError(
                f"Cannot convert {name} ({kind}): it changes the spatial size from "
                f"{size[0]}x{size[1]} to {out_size[0]}x{out_size[1]}, so it resamples, "
                "crops or pads inside, where the conversion cannot follow. Convert the "
                "model up to the layer before it, or rebuild that part with tfposenc layers."
            )
    for roll in ROLLS:
        rolled = {
            key: np.roll(v, roll, axis=axes) if v.ndim == 4 and v.shape[axes[0]] == size[0] else v
            for key, v in values.items()
        }
        for before, after, out_size in zip(reference, _run(node, rolled), out_sizes):
            follows = out_size == size
            expected = np.roll(before, roll, axis=axes) if follows else before
            gap = float(np.abs(after - expected).max())
            if gap > TOLERANCE * max(float(np.abs(before).max()), 1.0):
                what = "follow" if follows else "stay unchanged under"
                raise ValueError(
                    f"Cannot convert {name} ({kind}): its output does not {what} a circular "
                    f"shift of its {size[0]}x{size[1]} input (difference {gap:.3g} for a "
                    f"roll by {roll}), so it pads, slices or depends on positions inside, "
                    "where the conversion cannot follow. Convert the model up to the layer "
                    "before it, or rebuild that part with tfposenc layers."
                )


def _run(node, values):
    args, kwargs = node.arguments.fill_in(values)
    outputs = keras.tree.flatten(node.operation(*args, **kwargs))
    return [np.asarray(keras.ops.convert_to_numpy(o), "float64") for o in outputs]


def is_library_layer(layer):
    module = type(layer).__module__
    return module.startswith(("keras.", "tfposenc.", "keras_hub."))


def check_custom(layer):
    """A layer from outside Keras and tfposenc may pad or subsample where the converter
    cannot see it: refuse it if it holds convs, pools or padding of its own."""
    inner = [
        sub
        for sub in layer._flatten_layers(include_self=False)
        if isinstance(sub, CONV_TYPES + POOL_TYPES + (keras.layers.ZeroPadding2D, Padding2D))
    ]
    spatial = [name for name in SPATIAL_ATTRIBUTES if hasattr(layer, name)]
    if inner or spatial:
        what = f"layers {[s.name for s in inner]}" if inner else f"attributes {spatial}"
        raise ValueError(
            f"Cannot convert layer '{layer.name}' ({type(layer).__name__}): a custom layer "
            f"with internal padding or striding ({what}) cannot be converted faithfully. "
            "Rewrite it with Keras conv, pool and ZeroPadding2D layers, or convert it "
            "by hand with tfposenc.layers."
        )
