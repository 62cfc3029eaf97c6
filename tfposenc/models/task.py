"""The base class of the heads over a backbone: GAPNet, PermuteNet, Classifier, ..."""

import keras
from keras import ops

from tfposenc.layers import ChannelAblation
from tfposenc.models.backbone import Backbone
from tfposenc.normalization import check_statistics, pixel_mean, pixel_std
from tfposenc.validation import check_positive_int


class Task(keras.Model):
    """Input normalisation, a backbone, a `ChannelAblation` (empty by default), a head.

    A task owns its preprocessing, as a keras-hub Task does: given the pixel statistics
    of its training data (`mean`, `std`), it takes raw pixels (0..255, any real or
    integer dtype) and normalises them itself, so `predict`, a `.keras` file and a
    SavedModel export all take the same raw pixels. Without statistics the images go to
    the backbone unchanged (for data a user normalised already).

    Every task offers the probes of the paper on a trained model:
    `pooled_features(images)` (the global-average-pooled backbone channels, the latent
    that is ranked and that AugShift aligns), `ablate(channels)` and `ablated_channels`.
    Logits are float32 under any mixed-precision policy.

    Args:
        backbone: a `tfposenc.models.Backbone`, or a functional Keras model (taken
            through `Backbone.from_model`: its last 4D output is the feature map).
        num_outputs: int, the number of logits.
        mean: per-channel mean of the training pixels in [0, 1] units (e.g.
            `tfposenc.data.info("cifar10").mean`), or None. Defaults to `None`.
        std: per-channel standard deviation in [0, 1] units, or None. When either is
            set the model computes `(pixels - 255 * mean) / (255 * std)` (a missing
            mean counts as 0, a missing std as 1). Defaults to `None`.
    """

    def __init__(self, backbone, num_outputs, mean=None, std=None, **kwargs):
        if isinstance(backbone, keras.Model) and not isinstance(backbone, Backbone):
            try:
                backbone = Backbone.from_model(backbone)
            except ValueError as error:
                raise ValueError(
                    f"`backbone` must be a tfposenc Backbone or a functional Keras model "
                    f"({error}). Received: backbone={type(backbone).__name__}"
                ) from error
        if not isinstance(backbone, Backbone):
            raise ValueError(
                "`backbone` must be a tfposenc Backbone (ResNetBackbone, NiNBackbone, "
                "Backbone.from_model(model)) or a functional Keras model. "
                f"Received: backbone={type(backbone).__name__}"
            )
        check_positive_int(num_outputs, "num_outputs")
        mean, std = check_statistics(mean, "mean"), check_statistics(std, "std")
        super().__init__(**kwargs)
        self.backbone = backbone
        self.num_outputs = num_outputs
        self.mean = mean
        self.std = std
        self.ablation = ChannelAblation(name="ablation")
        self.ablation.build((None, None, None, backbone.output_channels))
        self.pool = keras.layers.GlobalAveragePooling2D(name="pool")

    def preprocess(self, images):
        """Raw pixels -> the backbone's input (float32), by the model's statistics."""
        images = ops.cast(images, "float32")
        if self.mean is None and self.std is None:
            return images
        return (images - pixel_mean(self.mean)) / pixel_std(self.std)

    def features(self, images, training=None):
        """The backbone's feature map (after ablation) for raw `images`."""
        return self.ablation(self.backbone(self.preprocess(images), training=training))

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
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
