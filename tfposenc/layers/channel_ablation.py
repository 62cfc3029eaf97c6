"""Zeroing chosen channels everywhere: the neuron-removal attack of the paper."""

import keras
import numpy as np
from keras import ops

from tfposenc.validation import channel_axis, normalize_data_format


def _normalize_channels(channels):
    original = channels
    if channels is None:
        return ()
    if isinstance(channels, int) and not isinstance(channels, bool):
        channels = (channels,)
    try:
        channels = tuple(int(c) for c in np.asarray(channels).reshape(-1).tolist())
    except (TypeError, ValueError):
        raise ValueError(
            f"`channels` must be a list of channel indices. Received: channels={original!r}"
        ) from None
    bad = [c for c in channels if c < 0]
    if bad:
        raise ValueError(
            f"`channels` must hold non-negative channel indices. Received: channels={original!r}"
        )
    return tuple(sorted(set(channels)))


@keras.saving.register_keras_serializable(package="tfposenc")
class ChannelAblation(keras.layers.Layer):
    """Sets the listed channels to zero at every position.

    The list lives in a non-trainable mask variable, so assigning a new list on a built,
    compiled model (`layer.channels = [3, 7]`) takes effect at the next call without
    rebuilding or retracing.

    Args:
        channels: list of ints, the channel indices to zero. Defaults to `()` (identity).
        data_format: string, `"channels_last"` or `"channels_first"`; which axis holds
            the channels of a 4D input. 2D inputs use their last axis. Defaults to
            `keras.config.image_data_format()`.

    Input shape:
        Any rank >= 2 tensor with a known channel count.

    Output shape:
        The input shape.

    Example:

    >>> layer = ChannelAblation(channels=[1])
    >>> layer(np.ones((1, 3))).tolist()
    [[1.0, 0.0, 1.0]]

    Reference:
        - [Islam et al., 2021](https://arxiv.org/abs/2108.07884), section 5
    """

    def __init__(self, channels=(), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._channels = _normalize_channels(channels)
        self.data_format = normalize_data_format(data_format)
        self.num_channels = None
        self.mask = None

    def _check(self, channels):
        if self.num_channels is not None:
            bad = [c for c in channels if c >= self.num_channels]
            if bad:
                raise ValueError(
                    f"`channels` must be below the channel count {self.num_channels}. "
                    f"Received: channels={list(channels)}"
                )

    def _mask_values(self):
        values = np.ones((self.num_channels,), dtype="float32")
        values[list(self._channels)] = 0.0
        return values

    def build(self, input_shape):
        self.rank = len(input_shape)
        self.num_channels = input_shape[channel_axis(self.data_format, self.rank)]
        if self.num_channels is None:
            raise ValueError(
                f"ChannelAblation needs a known channel count. Received: input_shape={input_shape}"
            )
        self._check(self._channels)
        self.mask = self.add_weight(
            name="mask",
            shape=(self.num_channels,),
            initializer=keras.initializers.Constant(self._mask_values()),
            trainable=False,
        )

    @property
    def channels(self):
        """The zeroed channel indices, sorted; read from the mask once built, so a model
        restored from weights reports what it really zeroes."""
        if self.mask is not None:
            mask = keras.ops.convert_to_numpy(self.mask)
            self._channels = tuple(int(c) for c in np.flatnonzero(mask == 0))
        return list(self._channels)

    @channels.setter
    def channels(self, value):
        channels = _normalize_channels(value)
        self._check(channels)
        self._channels = channels
        if self.mask is not None:
            self.mask.assign(self._mask_values())

    def call(self, inputs):
        shape = [1] * len(inputs.shape)
        shape[channel_axis(self.data_format, len(inputs.shape))] = self.num_channels
        return inputs * ops.reshape(ops.cast(self.mask, inputs.dtype), shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"channels": self.channels, "data_format": self.data_format})
        return config
