"""The base class of every tfposenc backbone: a functional model with named stages."""

import keras

from tfposenc.layers.padded_conv2d import CONV_PADDING_MODES
from tfposenc.validation import check_choice, check_input_shape, check_positive_int  # noqa: F401  (re-exported)


@keras.saving.register_keras_serializable(package="tfposenc")
class Backbone(keras.Model):
    """A functional feature extractor whose stage outputs are exposed by name.

    Subclasses build their graph in `__init__` and pass `stage_outputs`, an ordered dict
    of symbolic tensors (`"stem"`, `"stage1"`, ...); the last one is the model's output.
    A `Backbone` built directly on any functional graph (or with `Backbone.from_model`)
    saves its graph and stage names, so it round-trips through `.keras` files.

    Args:
        inputs: the symbolic input tensor (one image input).
        stage_outputs: dict of name -> symbolic 4D tensor, in order; the last is the
            output.
        padding_mode: the border mode of the graph's padded convolutions (what a head
            such as `GAPNet`'s conv uses).

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

    @classmethod
    def from_model(cls, model, stages=None, padding_mode="zero"):
        """A `Backbone` over the layers (and weights) of a functional Keras model.

        Args:
            model: a functional (or built `Sequential`) Keras model with one image
                input, e.g. `keras.applications.ResNet50(include_top=False)` or a
                classifier (its head is left out).
            stages: None, a list of layer names, or a dict `{stage: layer_name}`: the
                layers whose (4D) outputs become the named stages; the last one is the
                backbone's output. None takes the last layer with a 4D output (before
                any global pooling and dense head). Defaults to `None`.
            padding_mode: string, the model's border mode, for heads that follow it
                (`GAPNet`'s conv). Defaults to `"zero"`.

        Returns:
            A `Backbone` sharing the model's layers: training one trains the other.

        Example:

        >>> model = keras.applications.MobileNetV2(weights=None, input_shape=(64, 64, 3))
        >>> backbone = Backbone.from_model(model)
        >>> backbone.stage_names, backbone.output_channels
        (['out_relu'], 1280)
        """
        cls.check_padding_mode(padding_mode)
        if not isinstance(model, keras.Model) or getattr(model, "outputs", None) is None:
            raise ValueError(
                "`model` must be a functional Keras model (subclassed models have no graph "
                f"to take stages from). Received: model={type(model).__name__}"
            )
        if len(model.inputs) != 1:
            raise ValueError(
                "`model` must have one image input. "
                f"Received: a model with {len(model.inputs)} inputs"
            )
        if stages is None:
            spatial = [
                layer
                for layer in model.layers
                if not isinstance(layer, keras.layers.InputLayer)
                and len(getattr(layer, "_inbound_nodes", ())) == 1
                and len(getattr(layer._inbound_nodes[0], "outputs", ())) == 1
                and len(layer._inbound_nodes[0].outputs[0].shape) == 4
            ]
            if not spatial:
                raise ValueError(
                    "`model` has no layer with a 4D (image feature map) output to use as "
                    f"the backbone output. Received: model={model.name}"
                )
            stages = {spatial[-1].name: spatial[-1].name}
        elif isinstance(stages, (list, tuple)):
            stages = {name: name for name in stages}
        elif not isinstance(stages, dict) or not stages:
            raise ValueError(
                "`stages` must be None, a list of layer names or a dict "
                f"{{stage: layer_name}}. Received: stages={stages!r}"
            )
        outputs = {}
        names = [layer.name for layer in model.layers]
        for stage, layer_name in stages.items():
            if layer_name not in names:
                raise ValueError(
                    f"`stages` must name layers of the model. Received: stages={stages!r} "
                    f"(no layer {layer_name!r})"
                )
            tensor = model.get_layer(layer_name).output
            if not hasattr(tensor, "shape") or len(tensor.shape) != 4:
                raise ValueError(
                    "`stages` must name layers with 4D outputs. "
                    f"Received: {layer_name!r} with output {tensor!r}"
                )
            outputs[stage] = tensor
        return Backbone(model.inputs[0], outputs, padding_mode, name=model.name)

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

    def get_config(self):
        # The graph is saved as a functional model whose outputs are the stages, in
        # order; subclasses that build their own graph override this.
        graph = keras.Model(self.inputs, list(self.stage_outputs.values()))
        return {
            "name": self.name,
            "trainable": self.trainable,
            "graph": keras.saving.serialize_keras_object(graph),
            "stage_names": list(self.stage_names),
            "padding_mode": self.padding_mode,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "graph" not in config:
            return cls(**config)
        graph = keras.saving.deserialize_keras_object(config.pop("graph"))
        stage_names = config.pop("stage_names")
        outputs = graph.outputs
        return Backbone(graph.inputs[0], dict(zip(stage_names, outputs)), **config)
