"""Adaptive polyphase sampling: stride-2 subsampling that is exactly shift invariant."""

import math
import numbers

import keras
from keras import ops

from tfposenc.validation import normalize_data_format

# The polyphase components in index order: index = 2 * dy + dx.
PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


def _check_p(p):
    if not isinstance(p, numbers.Real) or isinstance(p, bool) or math.isnan(p) or p <= 0:
        raise ValueError(f"`p` must be a positive number or float('inf'). Received: p={p!r}")
    return float(p) if math.isinf(p) else p


@keras.saving.register_keras_serializable(package="tfposenc")
class AdaptivePolyphaseSampling2D(keras.layers.Layer):
    """Stride-2 subsampling that keeps the polyphase component of largest norm (APS).

    A stride-2 subsampling of `x` can keep any of the four polyphase components
    `x[:, dy::2, dx::2, :]`, indexed `2 * dy + dx`: `0 = (0, 0)`, `1 = (0, 1)`,
    `2 = (1, 0)`, `3 = (1, 1)`. A fixed choice (`dy = dx = 0`, what `strides=2` does)
    makes the output depend on the input's position modulo 2. This layer instead keeps,
    per example, the component with the largest `p`-norm over all its channels and
    positions (the first one in index order when norms tie exactly). A circular shift
    of the input by `(sy, sx)` permutes the components and shifts each circularly, so
    the chosen component moves from index `(dy, dx)` to `((dy + sy) % 2, (dx + sx) %
    2)` and the output is the unshifted output circularly shifted by `((dy + sy) // 2,
    (dx + sx) // 2)` at half resolution: exact shift equivariance at stride 2, and
    exact invariance after global pooling (Chaman and Dokmanic, 2021). It holds
    whenever the largest norm is unique; norms equal up to floating-point rounding
    may be ordered differently after a shift.

    In a residual block both branches must be subsampled at the same index, or their
    sum is not a shifted copy of the unshifted sum. Call the layer on a list
    `[x, *others]`: the index is chosen on `x` and applied to every tensor.
    `select_index` and `apply_index` expose the two steps separately.

    Spatial sizes must be even: an odd size has no circular shift that maps the
    components onto each other, so it raises a `ValueError` when the layer is built
    with a known odd size (crop or pad explicitly before the layer if needed).

    Args:
        p: positive float or `float("inf")`, the norm that ranks the components. Only
            the ranking matters, so the layer compares `sum(|x| ** p)` (the maximum of
            `|x|` for `inf`). Defaults to `2`.
        data_format: string, `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`.

    Call arguments:
        inputs: a 4D tensor `x`, or a list `[x, *others]` of 4D tensors with the same
            batch and spatial sizes as `x` (channels may differ).

    Input shape:
        4D tensor `(batch, rows, cols, channels)` (`channels_last`) or
        `(batch, channels, rows, cols)` (`channels_first`), rows and cols even; or a
        list of such shapes.

    Output shape:
        The input shape with `rows // 2` rows and `cols // 2` columns; a list of such
        shapes for a list input.

    Example:

    >>> x = np.zeros((2, 4, 4, 1), "float32")
    >>> x[0, 1, 0, 0] = 5.0  # example 0: component (1, 0) has the largest norm
    >>> layer = AdaptivePolyphaseSampling2D()
    >>> keras.ops.convert_to_numpy(layer.select_index(x)).tolist()
    [2, 0]
    >>> layer(x).shape
    (2, 2, 2, 1)
    >>> main, shortcut = layer([x, np.ones((2, 4, 4, 3), "float32")])
    >>> shortcut.shape
    (2, 2, 2, 3)

    Reference:
        - [Chaman and Dokmanic, 2021](https://arxiv.org/abs/2011.14214)
    """

    def __init__(self, p=2, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.p = _check_p(p)
        self.data_format = normalize_data_format(data_format)

    def _spatial_axes(self):
        return (1, 2) if self.data_format == "channels_last" else (2, 3)

    def build(self, input_shape):
        shapes = _as_shape_list(input_shape)
        axes = self._spatial_axes()
        reference = tuple(shapes[0][axis] for axis in axes)
        for shape in shapes:
            if len(shape) != 4:
                raise ValueError(
                    f"AdaptivePolyphaseSampling2D expects 4D inputs. "
                    f"Received: input_shape={input_shape}"
                )
            spatial = tuple(shape[axis] for axis in axes)
            if any(size is not None and size % 2 for size in spatial):
                raise ValueError(
                    "AdaptivePolyphaseSampling2D needs even rows and cols (an odd size "
                    "has no exact polyphase shift structure). "
                    f"Received: input_shape={input_shape}"
                )
            if any(a is not None and b is not None and a != b for a, b in zip(spatial, reference)):
                raise ValueError(
                    "Every tensor in the list must have the spatial size of the first, "
                    f"whose polyphase index it shares. Received: input_shape={input_shape}"
                )

    def _split(self, x):
        """Reshapes `x` so that the two phases are axes of size 2, without copying."""
        shape = ops.shape(x)
        if self.data_format == "channels_last":
            return ops.reshape(x, (-1, shape[1] // 2, 2, shape[2] // 2, 2, shape[3]))
        return ops.reshape(x, (-1, shape[1], shape[2] // 2, 2, shape[3] // 2, 2))

    def _phase_axes(self):
        return (2, 4) if self.data_format == "channels_last" else (3, 5)

    def select_index(self, x):
        """The index `2 * dy + dx` of each example's component of largest norm.

        Args:
            x: 4D tensor with even rows and cols.

        Returns:
            int32 tensor `(batch,)` with values in 0..3; exact ties go to the lowest
            index.
        """
        x = ops.convert_to_tensor(x)
        dtype = "float64" if keras.backend.standardize_dtype(x.dtype) == "float64" else "float32"
        magnitude = ops.abs(ops.cast(self._split(x), dtype))
        phase_axes = self._phase_axes()
        other_axes = tuple(axis for axis in range(1, 6) if axis not in phase_axes)
        if math.isinf(self.p):
            norms = ops.max(magnitude, axis=other_axes)
        else:
            if self.p == 2:
                powered = ops.square(magnitude)
            elif self.p == 1:
                powered = magnitude
            else:
                # Scale by the example's largest magnitude so that |x| ** p neither
                # overflows nor underflows; the scale is shared, so the ranking holds.
                scale = ops.max(magnitude, axis=(1, 2, 3, 4, 5), keepdims=True)
                scale = ops.where(scale > 0, scale, ops.ones_like(scale))
                powered = ops.power(magnitude / scale, self.p)
            norms = ops.sum(powered, axis=other_axes)
        norms = ops.stop_gradient(ops.reshape(norms, (-1, 4)))
        # First index reaching the maximum: argmax alone does not promise that on ties.
        best = ops.max(norms, axis=1, keepdims=True)
        candidates = ops.where(
            ops.equal(norms, best),
            ops.arange(4, dtype="int32")[None, :],
            ops.full((1, 4), 4, "int32"),
        )
        return ops.minimum(ops.min(candidates, axis=1), 3)

    def apply_index(self, x, index):
        """The polyphase component of each example of `x` at `index`.

        Args:
            x: 4D tensor with even rows and cols.
            index: int tensor `(batch,)` with values in 0..3 (`2 * dy + dx`), such as
                `select_index` returns.

        Returns:
            `x[b, dy::2, dx::2, :]` for each example `b` (`channels_last`; the
            spatial axes are 2 and 3 for `channels_first`).
        """
        x = ops.convert_to_tensor(x)
        index = ops.cast(ops.convert_to_tensor(index), "int32")
        mask = ops.equal(ops.arange(4, dtype="int32")[None, :], ops.reshape(index, (-1, 1)))
        if self.data_format == "channels_last":
            mask = ops.reshape(mask, (-1, 1, 2, 1, 2, 1))
        else:
            mask = ops.reshape(mask, (-1, 1, 1, 2, 1, 2))
        split = self._split(x)
        # `where` then a sum with exact zeros copies the kept values bit for bit (a
        # product with a 0/1 mask would turn an inf in a dropped component into NaN).
        return ops.sum(ops.where(mask, split, ops.zeros_like(split)), axis=self._phase_axes())

    def call(self, inputs):
        if isinstance(inputs, (list, tuple)):
            index = self.select_index(inputs[0])
            return [self.apply_index(tensor, index) for tensor in inputs]
        return self.apply_index(inputs, self.select_index(inputs))

    def compute_output_shape(self, input_shape):
        if _is_shape_list(input_shape):
            return [self._output_shape(shape) for shape in input_shape]
        return self._output_shape(input_shape)

    def _output_shape(self, input_shape):
        shape = list(input_shape)
        for axis in self._spatial_axes():
            if shape[axis] is not None:
                shape[axis] //= 2
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update({"p": self.p, "data_format": self.data_format})
        return config


def _is_shape_list(shape):
    return (
        isinstance(shape, (list, tuple)) and len(shape) > 0 and isinstance(shape[0], (list, tuple))
    )


def _as_shape_list(shape):
    return [tuple(s) for s in shape] if _is_shape_list(shape) else [tuple(shape)]
