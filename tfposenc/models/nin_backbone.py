"""Network in Network (Lin et al., 2014): three mlpconv blocks, the poster's NIN row."""

import keras

from tfposenc.layers import BatchNormalization, BlurPool2D, PaddedConv2D, Padding2D
from tfposenc.models.backbone import Backbone
from tfposenc.models.resnet_backbone import DOWNSAMPLING
from tfposenc.validation import check_choice, check_input_shape, check_number, check_positive_int


@keras.saving.register_keras_serializable(package="tfposenc")
class NiNBackbone(Backbone):
    """Network in Network without its final class-map conv.

    Three mlpconv blocks: (5x5 `width`, 1x1 `width*5/6`, 1x1 `width/2`), max-pool 3x3
    stride 2; (5x5, 1x1, 1x1 all `width`), average-pool 3x3 stride 2; (3x3, 1x1, 1x1 all
    `width`). `width=192` is the CIFAR NIN of Lin et al. The released NIN has no
    normalisation; `batch_norm=True` (the default here) adds BN after each conv so the
    network trains with Adam at the paper's settings. Pools pad 1 with zeros as PyTorch
    does (exact for the max-pool after ReLU; the average counts the pad, as PyTorch's
    default `count_include_pad=True`).

    Args:
        padding_mode: string, any `PaddedConv2D` mode for the 5x5 and 3x3 convs.
            Defaults to `"zero"`.
        width: int, the channels of the mlpconv layers. Defaults to `192`.
        batch_norm: bool. Defaults to `True`.
        dropout: float in [0, 1), dropout after the first two blocks. Defaults to `0.5`.
        downsampling: `"stride"` (strided pools) or `"blur"` (pools at stride 1, then
            `BlurPool2D`). Defaults to `"stride"`.
        input_shape: tuple `(height, width, channels)`. Defaults to `(None, None, 3)`.

    Reference:
        - [Lin et al., 2014](https://arxiv.org/abs/1312.4400)
    """

    def __init__(
        self,
        padding_mode="zero",
        width=192,
        batch_norm=True,
        dropout=0.5,
        downsampling="stride",
        input_shape=(None, None, 3),
        **kwargs,
    ):
        Backbone.check_padding_mode(padding_mode)
        check_positive_int(width, "width")
        check_number(dropout, "dropout", 0.0)
        if dropout >= 1:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
        check_choice(downsampling, DOWNSAMPLING, "downsampling")
        input_shape = check_input_shape(input_shape)

        # === Layers ===
        def conv(x, filters, kernel, name):
            mode = padding_mode if kernel > 1 else "valid"
            x = PaddedConv2D(
                filters, kernel, padding_mode=mode, use_bias=not batch_norm, name=name
            )(x)
            if batch_norm:
                x = BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)
            return keras.layers.ReLU(name=f"{name}_relu")(x)

        def pool(x, kind, name):
            x = Padding2D(1, "zero", name=f"{name}_pad")(x)
            layer = keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D
            if downsampling == "blur":
                x = layer(3, strides=1, name=name)(x)
                return BlurPool2D(4, 2, "reflect", name=f"{name}_blur")(x)
            return layer(3, strides=2, name=name)(x)

        # === Functional Model ===
        inputs = keras.Input(shape=input_shape, name="images")
        stages = {}
        x = conv(inputs, width, 5, "block1_conv1")
        x = conv(x, max(1, width * 5 // 6), 1, "block1_conv2")
        x = conv(x, max(1, width // 2), 1, "block1_conv3")
        x = pool(x, "max", "block1_pool")
        if dropout:
            x = keras.layers.Dropout(dropout, name="block1_dropout")(x)
        stages["block1"] = x
        x = conv(x, width, 5, "block2_conv1")
        x = conv(x, width, 1, "block2_conv2")
        x = conv(x, width, 1, "block2_conv3")
        x = pool(x, "avg", "block2_pool")
        if dropout:
            x = keras.layers.Dropout(dropout, name="block2_dropout")(x)
        stages["block2"] = x
        x = conv(x, width, 3, "block3_conv1")
        x = conv(x, width, 1, "block3_conv2")
        x = conv(x, width, 1, "block3_conv3")
        stages["block3"] = x
        super().__init__(inputs, stages, padding_mode, **kwargs)

        # === Config ===
        self.width = width
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.downsampling = downsampling
        self.image_shape = input_shape

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "padding_mode": self.padding_mode,
            "width": self.width,
            "batch_norm": self.batch_norm,
            "dropout": self.dropout,
            "downsampling": self.downsampling,
            "input_shape": self.image_shape,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
