"""Random channel permutation, the operation that defines PermuteNet."""

import keras
from keras import ops

from tfposenc.layers.seed_state import SavesSeedState
from tfposenc.validation import channel_axis, normalize_data_format


@keras.saving.register_keras_serializable(package="tfposenc")
class ChannelShuffle(SavesSeedState, keras.layers.Layer):
    """Shuffles the channel axis with a fresh random permutation on every call.

    One permutation is drawn per call and shared by the whole batch. It is applied in
    training *and* in inference, as PermuteNet requires (Islam et al., 2021): the layer
    is never gated on `training`, so `model.predict` shuffles too.

    Args:
        seed: int or None. Seeds the layer's `keras.random.SeedGenerator`; two layers
            with the same seed draw the same sequence of permutations. Defaults to
            `None` (a random seed).
        data_format: string, `"channels_last"` or `"channels_first"`; which axis holds
            the channels of a 4D input. 2D inputs `(batch, channels)` are shuffled on
            their last axis either way. Defaults to `keras.config.image_data_format()`.

    Call arguments:
        inputs: a 2D `(batch, channels)` or 4D tensor.

    Input shape:
        Any rank >= 2 tensor with a known channel count.

    Output shape:
        The input shape.

    Example:

    >>> layer = ChannelShuffle(seed=0)
    >>> perm = layer.sample_permutation(4)
    >>> layer.apply_permutation(np.array([[10., 11., 12., 13.]]), perm).shape
    (1, 4)

    Reference:
        - [Islam et al., 2021](https://arxiv.org/abs/2108.07884)
    """

    def __init__(self, seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError(f"`seed` must be an int or None. Received: seed={seed!r}")
        self.seed = seed
        self.data_format = normalize_data_format(data_format)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        channels = input_shape[channel_axis(self.data_format, len(input_shape))]
        if channels is None:
            raise ValueError(
                f"ChannelShuffle needs a known channel count. Received: input_shape={input_shape}"
            )

    def sample_permutation(self, channels):
        """Draws one permutation of `range(channels)` and advances the seed state."""
        scores = keras.random.uniform((channels,), seed=self.seed_generator)
        return ops.argsort(scores)

    def apply_permutation(self, inputs, permutation):
        """Reorders the channel axis of `inputs` by `permutation` (`out[c] = in[perm[c]]`)."""
        return ops.take(inputs, permutation, axis=channel_axis(self.data_format, len(inputs.shape)))

    def call(self, inputs):
        axis = channel_axis(self.data_format, len(inputs.shape))
        return self.apply_permutation(inputs, self.sample_permutation(inputs.shape[axis]))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed, "data_format": self.data_format})
        return config
