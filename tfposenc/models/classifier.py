"""The usual classifier: global average pooling and a dense layer."""

import keras

from tfposenc.models.task import Task


@keras.saving.register_keras_serializable(package="tfposenc")
class Classifier(Task):
    """Backbone, global average pooling, dense: the network AugShift trains, the channel
    attack ranks, and the un-shuffled control of `PermuteNet`.

    Args:
        backbone: a `tfposenc.models.Backbone`.
        num_classes: int, the number of classes.
        **kwargs: `mean`, `std` (see `Task`), `name`, ...

    Example:

    >>> model = Classifier(ResNetBackbone(width=8, stem="cifar"), num_classes=10)
    >>> model.pooled_features(np.zeros((2, 32, 32, 3))).shape
    (2, 64)
    """

    def __init__(self, backbone, num_classes, **kwargs):
        kwargs.pop("num_outputs", None)
        super().__init__(backbone, num_classes, **kwargs)
        self.num_classes = num_classes
        self.dense = keras.layers.Dense(num_classes, name="dense")
        self.dense.build((None, self.backbone.output_channels))
        self.built = True

    def head(self, features, pooled, training=None):
        return self.dense(pooled)

    def get_config(self):
        config = super().get_config()
        config["num_classes"] = config.pop("num_outputs")
        return config
