"""The base class of every tfposenc backbone: a functional model with named stages."""

import keras

from tfposenc.layers.padded_conv2d import CONV_PADDING_MODES
from tfposenc.validation import check_choice, check_input_shape, check_positive_int  # noqa: F401  (re-exported)


class Backbone(keras.Model):
    """A functional feature extractor whose stage outputs are exposed by name.

    Subclasses build their graph in `__init__` and pass `stage_outputs`, an ordered dict
    of symbolic tensors (`"stem"`, `"stage1"`, ...); the last one is the model's output.

    Attributes:
        stage_outputs: dict of name -> symbolic tensor.
        output_channels: int, channels of the final feature map.
        padding_mode: the border mode of every spatially padded convolution.
    """

    def __init__(self, inputs, stage_outputs, padding_mode, **kwargs):
        last = list(stage_outputs.values())[-1]
        super().__init__(inputs=inputs, outputs=last, **kwargs)
        self.stage_outputs = dict(stage_outputs)
        self.stage_names = list(stage_outputs)
        self.output_channels = int(last.shape[-1])
        self.padding_mode = padding_mode

    def feature_extractor(self, stages=None):
        """A model that maps images to a dict of the named stage outputs (for probing)."""
        stages = self.stage_names if stages is None else list(stages)
        unknown = [s for s in stages if s not in self.stage_outputs]
        if unknown:
            raise ValueError(
                f"`stages` must be among {self.stage_names}. Received: stages={stages}"
            )
        return keras.Model(self.input, {s: self.stage_outputs[s] for s in stages})

    @staticmethod
    def check_padding_mode(padding_mode):
        return check_choice(padding_mode, CONV_PADDING_MODES, "padding_mode")
