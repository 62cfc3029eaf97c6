"""Spatial padding with the border modes that decide how much position a CNN can see."""

import keras
from keras import ops

from tfposenc.validation import check_choice, normalize_data_format, spatial_axes, spatial_shape
from tfposenc.vocabulary import PADDING_MODES


def normalize_padding(padding, name="padding"):
    """Normalises an int, `(pad_h, pad_w)` or `((top, bottom), (left, right))`.

    Returns:
        `((top, bottom), (left, right))` of non-negative ints.
    """
    original = padding
    if isinstance(padding, int) and not isinstance(padding, bool):
        padding = ((padding, padding), (padding, padding))
    elif isinstance(padding, (tuple, list)) and len(padding) == 2:
        if all(isinstance(p, int) and not isinstance(p, bool) for p in padding):
            padding = ((padding[0], padding[0]), (padding[1], padding[1]))
        elif all(isinstance(p, (tuple, list)) and len(p) == 2 for p in padding):
            padding = tuple(tuple(p) for p in padding)
        else:
            padding = None
    else:
        padding = None
    if padding is None or not all(
        isinstance(v, int) and not isinstance(v, bool) for pair in padding for v in pair
    ):
        raise ValueError(
            f"`{name}` must be an int, a tuple of 2 ints (pad_h, pad_w) or a tuple of 2 "
            f"tuples of 2 ints ((top, bottom), (left, right)). Received: {name}={original!r}"
        )
    if any(v < 0 for pair in padding for v in pair):
        raise ValueError(f"`{name}` must be non-negative. Received: {name}={original!r}")
    return (tuple(padding[0]), tuple(padding[1]))


def check_pad_fits(padding, sizes, padding_mode, name="padding"):
    """Raises if a reflect or circular pad is too wide for a known spatial size."""
    for (before, after), size, axis in zip(padding, sizes, ("height", "width")):
        if size is None:
            continue
        widest = max(before, after)
        if padding_mode == "reflect" and widest >= size:
            raise ValueError(
                f"A reflect pad must be smaller than the padded dimension ({axis} {size}), "
                f"as in PyTorch. Received: {name}={padding} for input {axis} {size}"
            )
        if padding_mode == "circular" and widest > size:
            raise ValueError(
                f"A circular pad must not exceed the padded dimension ({axis} {size}). "
                f"Received: {name}={padding} for input {axis} {size}"
            )


def _pad_axis(x, axis, before, after, mode):
    """Pads one axis in `"replicate"` or `"circular"` mode by concatenating slices."""
    if before == 0 and after == 0:
        return x
    rank = len(x.shape)

    def take(start, stop):
        index = [slice(None)] * rank
        index[axis] = slice(start, stop)
        return x[tuple(index)]

    parts = []
    if mode == "replicate":
        if before:
            parts.append(ops.repeat(take(0, 1), before, axis=axis))
        parts.append(x)
        if after:
            parts.append(ops.repeat(take(-1, None), after, axis=axis))
    else:  # circular
        if before:
            parts.append(take(-before, None))
        parts.append(x)
        if after:
            parts.append(take(0, after))
    return ops.concatenate(parts, axis=axis)


def pad_spatial(x, padding, padding_mode="zero", data_format="channels_last"):
    """Pads the two spatial axes of a 4D tensor; `padding` is `((top, bottom), (left, right))`.

    The result equals `np.pad` with mode constant (zero), reflect, edge (replicate) or
    wrap (circular) whenever each pad is smaller than the padded dimension.
    """
    mode = padding_mode
    (top, bottom), (left, right) = padding
    if top == bottom == left == right == 0:
        return x
    h_axis, w_axis = spatial_axes(data_format)
    if mode in ("reflect", "circular"):
        # Sizes unknown when the model was built are known when it is traced on data:
        # fail here with a clear message rather than inside TensorFlow's MirrorPad.
        check_pad_fits(padding, (x.shape[h_axis], x.shape[w_axis]), mode)
    if mode in ("zero", "reflect"):
        pads = [[0, 0]] * 4
        pads[h_axis] = [top, bottom]
        pads[w_axis] = [left, right]
        return ops.pad(x, pads, mode="constant" if mode == "zero" else "reflect")
    x = _pad_axis(x, h_axis, top, bottom, mode)
    return _pad_axis(x, w_axis, left, right, mode)


@keras.saving.register_keras_serializable(package="tfposenc")
class Padding2D(keras.layers.Layer):
    """Pads the spatial borders of an image tensor with a chosen mode.

    Zero padding is the main source of absolute position information in CNNs (Islam et
    al., ICCV 2021); this layer makes the border rule a choice.

    Args:
        padding: int, tuple of 2 ints or tuple of 2 tuples of 2 ints. An int pads every
            side equally; `(pad_h, pad_w)` pads top and bottom by `pad_h`, left and right
            by `pad_w`; `((top, bottom), (left, right))` sets each side. Defaults to `1`.
        padding_mode: string, one of `"zero"`, `"reflect"`, `"replicate"`, `"circular"`; the
            same as `np.pad` modes `"constant"`, `"reflect"`, `"edge"` and `"wrap"`.
            A reflect pad must be smaller than the padded dimension and a circular pad
            no larger than it. Defaults to `"zero"`.
        data_format: string, `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`.

    Input shape:
        4D tensor `(batch, rows, cols, channels)` for `"channels_last"`, or
        `(batch, channels, rows, cols)` for `"channels_first"`.

    Output shape:
        The input shape with `top + bottom` more rows and `left + right` more columns.

    Example:

    >>> x = np.arange(1, 17, dtype="float32").reshape((1, 4, 4, 1))
    >>> y = Padding2D(1, padding_mode="replicate")(x)
    >>> y.shape
    (1, 6, 6, 1)

    Reference:
        - [Islam et al., 2021](https://arxiv.org/abs/2108.07884)
    """

    def __init__(self, padding=1, padding_mode="zero", data_format=None, **kwargs):
        if "mode" in kwargs:  # the name before 0.2, still found in saved configs
            padding_mode = kwargs.pop("mode")
        super().__init__(**kwargs)
        self.padding = normalize_padding(padding)
        self.padding_mode = check_choice(padding_mode, PADDING_MODES, "padding_mode")
        self.data_format = normalize_data_format(data_format)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        check_pad_fits(
            self.padding, spatial_shape(input_shape, self.data_format), self.padding_mode
        )

    def call(self, inputs):
        return pad_spatial(inputs, self.padding, self.padding_mode, self.data_format)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis, (before, after) in zip(spatial_axes(self.data_format), self.padding):
            if shape[axis] is not None:
                shape[axis] = shape[axis] + before + after
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "padding": self.padding,
                "padding_mode": self.padding_mode,
                "data_format": self.data_format,
            }
        )
        return config
