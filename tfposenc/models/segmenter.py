"""Segmenter: a small conv head on the feature map, upsampled to the input size."""

import keras
from keras import ops

from tfposenc.layers import PaddedConv2D
from tfposenc.models.task import Task
from tfposenc.validation import check_positive_int


def bilinear_matrix(out_size, in_size, dtype="float32"):
    """`[out_size, in_size]` weights of bilinear resampling with half-pixel centres.

    Row `i` interpolates output pixel `i` from the input pixels around
    `(i + 0.5) * in_size / out_size - 0.5` (clamped to the edges), which is
    `tf.image.resize(..., "bilinear")` and PyTorch's `align_corners=False`. Sizes may be
    dynamic scalars.
    """
    scale = ops.cast(in_size, "float32") / ops.cast(out_size, "float32")
    source = (ops.cast(ops.arange(out_size), "float32") + 0.5) * scale - 0.5
    source = ops.clip(source, 0.0, ops.cast(in_size, "float32") - 1.0)
    low = ops.floor(source)
    frac = source - low
    low = ops.cast(low, "int32")
    high = ops.minimum(low + 1, ops.cast(in_size, "int32") - 1)
    columns = ops.arange(in_size, dtype="int32")[None, :]
    weights = ops.cast(ops.equal(low[:, None], columns), "float32") * (1.0 - frac[:, None])
    weights = weights + ops.cast(ops.equal(high[:, None], columns), "float32") * frac[:, None]
    return ops.cast(weights, dtype)


def upsample_bilinear(maps, height, width):
    """Resizes channels_last `maps` `[B, h, w, C]` to `[B, height, width, C]` (bilinear).

    Two matrix products with `bilinear_matrix`, so the target size may be dynamic
    (unknown until the model is called) on any backend.
    """
    shape = ops.shape(maps)
    rows = bilinear_matrix(height, shape[1], maps.dtype)
    cols = bilinear_matrix(width, shape[2], maps.dtype)
    maps = ops.einsum("Hh,bhwc->bHwc", rows, maps)
    return ops.einsum("Ww,bHwc->bHWc", cols, maps)


@keras.saving.register_keras_serializable(package="tfposenc")
class Segmenter(Task):
    """Semantic segmentation: backbone, a small conv head, bilinear upsampling.

    The head is a 3x3 conv (`head_channels`, the backbone's padding mode, no bias), batch
    normalisation, ReLU and a 1x1 conv to `num_classes` logits at the feature map's
    resolution; the logits are then upsampled bilinearly (half-pixel centres) to the
    spatial size of the input, whatever the backbone's output stride. This is DeepLab's
    decoder-less read-out without ASPP. `pooled_features` and `ablate` are those of every
    `Task`: the attack zeroes backbone channels before the head.

    Args:
        backbone: a `tfposenc.models.Backbone` (channels_last).
        num_classes: int, the number of classes (11 for digit canvases: ten digits
            and the background).
        head_channels: int, channels of the head's 3x3 conv. Defaults to `64`.
        **kwargs: passed to `Task`: `mean` / `std` (the model then takes raw pixels,
            0..255, and normalises them itself), `name`, ...

    Call arguments:
        images: `[B, H, W, C]` images (raw pixels when `mean` / `std` are set).
        training: bool, batch-norm mode.

    Output shape:
        `[B, H, W, num_classes]` float32 logits; train with
        `SparseCategoricalCrossentropy(from_logits=True)` on `[B, H, W]` label maps.

    Example:

    >>> model = Segmenter(ResNetBackbone(width=8, stem="cifar"), num_classes=11)
    >>> model(np.zeros((2, 32, 32, 3))).shape
    (2, 32, 32, 11)
    """

    def __init__(self, backbone, num_classes, head_channels=64, **kwargs):
        kwargs.pop("num_outputs", None)
        check_positive_int(num_classes, "num_classes")
        check_positive_int(head_channels, "head_channels")
        super().__init__(backbone, num_classes, **kwargs)
        self.num_classes = num_classes
        self.head_channels = head_channels
        channels = self.backbone.output_channels
        self.head_conv = PaddedConv2D(
            head_channels,
            3,
            padding_mode=self.backbone.padding_mode,
            use_bias=False,
            kernel_initializer="he_normal",
            name="head_conv",
        )
        self.head_conv.build((None, None, None, channels))
        self.head_bn = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="head_bn")
        self.head_bn.build((None, None, None, head_channels))
        self.head_relu = keras.layers.ReLU(name="head_relu")
        self.classifier = keras.layers.Conv2D(num_classes, 1, name="classifier")
        self.classifier.build((None, None, None, head_channels))
        self.built = True

    def head(self, features, pooled, training=None):
        """Logits at the feature map's resolution, `[B, h, w, num_classes]`."""
        x = self.head_bn(self.head_conv(features), training=training)
        return self.classifier(self.head_relu(x))

    def forward(self, images, training=None):
        """Returns `(logits [B, H, W, num_classes], pooled_features)`."""
        logits, pooled = super().forward(images, training=training)
        shape = ops.shape(images)
        return upsample_bilinear(logits, shape[1], shape[2]), pooled

    def get_config(self):
        config = super().get_config()
        config["num_classes"] = config.pop("num_outputs")
        config["head_channels"] = self.head_channels
        return config
