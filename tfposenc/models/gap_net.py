"""GAPNet: the pooled output of a conv layer *is* the prediction; no dense layer."""

import keras

from tfposenc.layers import PaddedConv2D
from tfposenc.models.task import Task


@keras.saving.register_keras_serializable(package="tfposenc")
class GAPNet(Task):
    """Backbone, then a 3x3 conv to `num_outputs` channels, then global average pooling.

    The pooled values are the logits; there is no dense layer anywhere, so a location
    label can only be predicted from what the channels encode (Islam et al., 2021,
    Fig. 1 left). The head conv has a bias and uses the backbone's padding mode.

    Args:
        backbone: a `tfposenc.models.Backbone`.
        num_outputs: int, the number of classes (`k * k` grid cells for location).

    Example:

    >>> model = GAPNet(ResNetBackbone(width=8), num_outputs=9)
    >>> model(np.zeros((2, 96, 96, 3))).shape
    (2, 9)
    """

    def __init__(self, backbone, num_outputs, **kwargs):
        super().__init__(backbone, num_outputs, **kwargs)
        mode = backbone.padding_mode
        self.head_conv = PaddedConv2D(num_outputs, 3, padding_mode=mode, name="head_conv")
        self.head_conv.build((None, None, None, backbone.output_channels))
        self.built = True

    def head(self, features, pooled, training=None):
        return self.pool(self.head_conv(features))
