"""PermuteNet: the pooled channels are shuffled before the dense read-out."""

import keras

from tfposenc.layers import ChannelShuffle
from tfposenc.models.task import Task


@keras.saving.register_keras_serializable(package="tfposenc")
class PermuteNet(Task):
    """Backbone, global average pooling, `ChannelShuffle`, dense.

    A fresh permutation of the pooled channels is drawn on every call (shared by the
    batch), in training and at test time alike, so the read-out cannot rely on which
    channel fired (Islam et al., 2021, Fig. 1 right).

    Args:
        backbone: a `tfposenc.models.Backbone`.
        num_outputs: int, the number of classes.
        seed: int or None, seeds the shuffle. Defaults to `None`.
    """

    def __init__(self, backbone, num_outputs, seed=None, **kwargs):
        super().__init__(backbone, num_outputs, **kwargs)
        self.seed = seed
        self.shuffle = ChannelShuffle(seed=seed, name="shuffle")
        self.dense = keras.layers.Dense(num_outputs, name="dense")
        self.dense.build((None, backbone.output_channels))
        self.built = True

    def head(self, features, pooled, training=None):
        return self.dense(self.shuffle(pooled))

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config
