"""GAPNet: the pooled output of a conv layer *is* the prediction; no dense layer."""

import keras

from tfposenc.layers import PaddedConv2D
from tfposenc.models.task import Task
from tfposenc.validation import check_positive_int


@keras.saving.register_keras_serializable(package="tfposenc")
class GAPNet(Task):
    """Backbone, then a conv to `num_outputs` channels, then global average pooling.

    The pooled values are the logits; there is no dense layer anywhere, so a location
    label can only be predicted from what the channels encode (Islam et al., 2021,
    Fig. 1 left). The head conv has a bias and uses the backbone's padding mode.

    A 3x3 zero-padded head (the paper's) on a small final map can read position by
    itself: on a 2x2 or 3x3 map its taps see a different border at every position, so
    with global pooling it is an unrestricted linear map over positions. A 1x1 head
    commutes with average pooling (`GAP(conv1x1(x)) == dense(GAP(x))`), so
    `head_kernel_size=1` is exactly the pooled dense read-out of `Classifier`.

    Args:
        backbone: a `tfposenc.models.Backbone`.
        num_outputs: int, the number of classes (`k * k` grid cells for location).
        head_kernel_size: int, the head conv's kernel size (odd). 3 is the paper's.
            Defaults to `3`.
        **kwargs: `mean`, `std` (see `Task`), `name`, ...

    Example:

    >>> model = GAPNet(ResNetBackbone(width=8), num_outputs=9)
    >>> model(np.zeros((2, 96, 96, 3))).shape
    (2, 9)
    """

    def __init__(self, backbone, num_outputs, head_kernel_size=3, **kwargs):
        check_positive_int(head_kernel_size, "head_kernel_size")
        if head_kernel_size % 2 == 0:
            raise ValueError(
                "`head_kernel_size` must be odd (the head keeps the map's size). "
                f"Received: head_kernel_size={head_kernel_size!r}"
            )
        super().__init__(backbone, num_outputs, **kwargs)
        self.head_kernel_size = head_kernel_size
        self.head_conv = PaddedConv2D(
            num_outputs, head_kernel_size, padding_mode=self.backbone.padding_mode, name="head_conv"
        )
        self.head_conv.build((None, None, None, self.backbone.output_channels))
        self.built = True

    def head(self, features, pooled, training=None):
        return self.pool(self.head_conv(features))

    def get_config(self):
        return super().get_config() | {"head_kernel_size": self.head_kernel_size}
