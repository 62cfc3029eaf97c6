"""The usual classifier: global average pooling and a dense layer."""

import keras

from tfposenc.models.readout import readout_dense
from tfposenc.models.task import Task


@keras.saving.register_keras_serializable(package="tfposenc")
class Classifier(Task):
    """Backbone, global average pooling, dense: the network AugShift trains, the channel
    attack ranks, and the un-shuffled control of `PermuteNet`.

    Args:
        backbone: a `tfposenc.models.Backbone`.
        num_classes: int, the number of classes.
        readout_init: string, the dense layer's initialisation, `"glorot"` (Keras') or
            `"torch"` (PyTorch's, the authors'; see `readout_dense`). Defaults to
            `"glorot"`.
        **kwargs: `mean`, `std` (see `Task`), `name`, ...

    Example:

    >>> model = Classifier(ResNetBackbone(width=8, stem="cifar"), num_classes=10)
    >>> model.pooled_features(np.zeros((2, 32, 32, 3))).shape
    (2, 64)
    """

    def __init__(self, backbone, num_classes, readout_init="glorot", **kwargs):
        kwargs.pop("num_outputs", None)
        super().__init__(backbone, num_classes, **kwargs)
        self.num_classes = num_classes
        self.readout_init = readout_init
        self.dense = readout_dense(num_classes, self.backbone.output_channels, readout_init)
        self.built = True

    def head(self, features, pooled, training=None):
        return self.dense(pooled)

    def get_config(self):
        config = super().get_config()
        config["num_classes"] = config.pop("num_outputs")
        return config | {"readout_init": self.readout_init}
