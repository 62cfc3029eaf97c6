"""PermuteNet and SortNet: the pooled channels lose their order before the read-out."""

import keras
from keras import ops

from tfposenc.layers import ChannelShuffle
from tfposenc.models.task import Task


@keras.saving.register_keras_serializable(package="tfposenc")
class PermuteNet(Task):
    """Backbone, global average pooling, `ChannelShuffle`, dense.

    A fresh permutation of the pooled channels is drawn on every call (shared by the
    batch), in training and at test time alike, so the read-out cannot rely on which
    channel fired (Islam et al., 2021, Fig. 1 right). `Classifier` is the same network
    without the shuffle: the exact control.

    Args:
        backbone: a `tfposenc.models.Backbone`.
        num_outputs: int, the number of classes.
        seed: int or None, seeds the shuffle. Defaults to `None`.
        **kwargs: `mean`, `std` (see `Task`), `name`, ...
    """

    def __init__(self, backbone, num_outputs, seed=None, **kwargs):
        super().__init__(backbone, num_outputs, **kwargs)
        self.seed = seed
        self.shuffle = ChannelShuffle(seed=seed, name="shuffle")
        self.dense = keras.layers.Dense(num_outputs, name="dense")
        self.dense.build((None, self.backbone.output_channels))
        self.built = True

    def head(self, features, pooled, training=None):
        return self.dense(self.shuffle(pooled))

    def get_config(self):
        return super().get_config() | {"seed": self.seed}


@keras.saving.register_keras_serializable(package="tfposenc")
class SortNet(Task):
    """Backbone, global average pooling, sort the channels by value, dense.

    Beyond the paper: sorting keeps the whole multiset of pooled values but no channel
    identity, deterministically. If position survives here but not in `PermuteNet`, it
    lives in the distribution of values; if it is lost in both, in the channel order.
    The output is invariant to any permutation of the pooled channels.

    Args:
        backbone: a `tfposenc.models.Backbone`.
        num_outputs: int, the number of classes.
        **kwargs: `mean`, `std` (see `Task`), `name`, ...
    """

    def __init__(self, backbone, num_outputs, **kwargs):
        super().__init__(backbone, num_outputs, **kwargs)
        self.dense = keras.layers.Dense(num_outputs, name="dense")
        self.dense.build((None, self.backbone.output_channels))
        self.built = True

    def head(self, features, pooled, training=None):
        return self.dense(ops.sort(pooled, axis=-1))
