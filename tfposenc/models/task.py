"""The base class of the heads over a backbone: GAPNet, PermuteNet and Classifier."""

import keras
from keras import ops

from tfposenc.layers import ChannelAblation
from tfposenc.models.backbone import Backbone, check_positive_int


class Task(keras.Model):
    """A backbone, a `ChannelAblation` (empty by default) and a head.

    Every task offers the probes of the paper on a trained model:
    `pooled_features(images)` (the global-average-pooled backbone channels, the latent
    that is ranked and that AugShift aligns), `ablate(channels)` and `ablated_channels`.
    Logits are float32 under any mixed-precision policy.

    Args:
        backbone: a `tfposenc.models.Backbone`.
        num_outputs: int, the number of logits.
    """

    def __init__(self, backbone, num_outputs, **kwargs):
        if not isinstance(backbone, Backbone):
            raise ValueError(
                "`backbone` must be a tfposenc Backbone (ResNetBackbone, NiNBackbone). "
                f"Received: backbone={type(backbone).__name__}"
            )
        check_positive_int(num_outputs, "num_outputs")
        super().__init__(**kwargs)
        self.backbone = backbone
        self.num_outputs = num_outputs
        self.ablation = ChannelAblation(name="ablation")
        self.ablation.build((None, None, None, backbone.output_channels))
        self.pool = keras.layers.GlobalAveragePooling2D(name="pool")

    def features(self, images, training=None):
        """The backbone's feature map after ablation."""
        return self.ablation(self.backbone(images, training=training))

    def head(self, features, pooled, training=None):
        """Maps the feature map (and its pooled channels) to logits."""
        raise NotImplementedError

    def forward(self, images, training=None):
        """Returns `(logits, pooled_features)` from one pass of the backbone."""
        features = self.features(images, training=training)
        pooled = self.pool(features)
        logits = self.head(features, pooled, training=training)
        return ops.cast(logits, "float32"), ops.cast(pooled, "float32")

    def call(self, images, training=None):
        return self.forward(images, training=training)[0]

    def pooled_features(self, images, training=False):
        """The globally averaged backbone channels (after ablation), float32."""
        return ops.cast(self.pool(self.features(images, training=training)), "float32")

    def ablate(self, channels=()):
        """Zeroes `channels` of the backbone output at every position; `()` restores."""
        self.ablation.channels = channels

    @property
    def ablated_channels(self):
        return self.ablation.channels

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_outputs": self.num_outputs,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
