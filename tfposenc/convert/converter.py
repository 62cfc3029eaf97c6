"""`Converter`: rebuilds a functional model node by node on the converted inputs, each
node with a copy of its layer (weights copied) or its replacement, as its `Plan` says."""

import keras

from tfposenc.layers import AdaptivePolyphaseSampling2D, BlurPool2D, PaddedConv2D, Padding2D
from tfposenc.models.backbone import Backbone
from tfposenc.models.resnet_backbone import blur_padding_for

from .describe import describe
from .graph import Graph, structure
from .padding import CONV_TYPES, POOL_TYPES, is_zero_pad, layer_same_padding, pads_of, window_of
from .plan import Plan
from .spatial import check_copied, check_custom, is_library_layer
from .weights import WeightCopier

# keras.ops called on symbolic tensors in a functional model become graph nodes of
# these classes; they pad or subsample inside and cannot be converted.
SPATIAL_OPS = ("Pad", "Conv", "DepthwiseConv", "SeparableConv", "MaxPool", "AveragePool")


class Converter:
    """Rebuilds `model` with `padding_mode` borders and `downsampling` subsampling."""

    def __init__(self, model, padding_mode, downsampling, blur_filter_size, blur_padding_mode):
        self.model = model
        self.padding_mode = padding_mode
        self.downsampling = downsampling
        self.blur_filter_size = blur_filter_size
        self.blur_padding_mode = blur_padding_mode or blur_padding_for(padding_mode)
        self.identity = padding_mode == "zero" and downsampling == "stride"
        self.stages = dict(model.stage_outputs) if isinstance(model, Backbone) else {}
        self.structure = structure(model)
        roots = keras.tree.flatten(self.structure[1]) + list(self.stages.values())
        self.graph = Graph(roots)
        self.changes = []
        self.names = {layer.name for layer in model.layers}
        self.inputs, self.raw, self.done, self.clones = {}, {}, {}, {}
        self.building = set()
        self.plan = Plan(self.graph, padding_mode, downsampling)

    def unique(self, name):
        candidate, index = name, 1
        while candidate in self.names:
            index += 1
            candidate = f"{name}_{index}"
        self.names.add(candidate)
        return candidate

    def value(self, tensor):
        node = self.graph.producer(tensor)
        if node is None:
            if id(tensor) not in self.inputs:
                operation = tensor._keras_history.operation
                self.inputs[id(tensor)] = keras.Input(
                    batch_shape=tuple(tensor.shape),
                    dtype=tensor.dtype,
                    name=getattr(operation, "name", None),
                )
            return self.inputs[id(tensor)]
        return self.outputs(node)[tensor._keras_history.tensor_index]

    def outputs(self, node):
        if id(node) in self.done:
            return self.done[id(node)]
        outputs = self.raw_outputs(node)
        site = self.plan.anchor_site.get(id(node))
        if site is not None:
            outputs = [self._sample(node, site, outputs[0])]
        if id(node) not in self.plan.unsampled or site is not None:
            self._check_shapes(node, outputs)
        self.done[id(node)] = outputs
        return outputs

    def _check_shapes(self, node, outputs):
        for old, new in zip(node.outputs, outputs):
            old_shape, new_shape = tuple(old.shape), tuple(getattr(new, "shape", ()))
            if len(old_shape) == len(new_shape) and any(
                a is not None and b is not None and a != b for a, b in zip(old_shape, new_shape)
            ):
                raise ValueError(
                    f"Cannot convert layer '{node.operation.name}' faithfully: its output "
                    f"shape would change from {old_shape} to {new_shape} (a stride the "
                    "conversion cannot align with this input size)."
                )

    def raw_outputs(self, node):
        """The node rebuilt on converted inputs, before any subsampling at an anchor."""
        if id(node) in self.raw:
            return self.raw[id(node)]
        if id(node) in self.building:
            raise ValueError(
                f"Cannot convert layer '{node.operation.name}': its polyphase index would "
                "depend on its own output."
            )
        self.building.add(id(node))
        values = {id(t): self.value(t) for t in node.arguments.keras_tensors}
        args, kwargs = node.arguments.fill_in(values)
        try:
            result = self._call(node, args, kwargs)
        except ValueError as error:
            if f"'{node.operation.name}'" in str(error):
                raise
            raise ValueError(f"Cannot convert {_name(node)}: {error}") from error
        except Exception as error:  # noqa: BLE001 - a model it cannot convert: ValueError
            raise ValueError(
                f"Cannot convert {_name(node)}: rebuilding it failed "
                f"({type(error).__name__}: {error})."
            ) from error
        outputs = keras.tree.flatten(result)
        self.raw[id(node)] = outputs
        self.building.discard(id(node))
        return outputs

    def _call(self, node, args, kwargs):
        layer = node.operation
        if id(node) in self.plan.absorbed:
            return args[0]  # the strided window re-pads (see Plan._absorb_pad)
        if id(node) in self.plan.repadded:
            new = Padding2D(
                pads_of(layer),
                self.padding_mode,
                data_format=getattr(layer, "data_format", None),
                name=layer.name,
                dtype=layer.dtype_policy,
            )
            self.changes.append((layer.name, describe(layer), describe(new)))
            return self._pad(new, layer, args[0])
        if not isinstance(layer, keras.layers.Layer):
            return self._call_operation(node, args, kwargs)
        if isinstance(layer, keras.Model) and structure(layer) is not None:
            return self._call_submodel(layer, args, kwargs)
        if id(node) in self.plan.sites:
            return self._call_site(node, args, kwargs)
        if isinstance(layer, PaddedConv2D):
            return self._call_padded_conv(layer, {}, args, kwargs)
        if isinstance(layer, CONV_TYPES + POOL_TYPES) and layer.padding == "same":
            return self._call_same(layer, None, args, kwargs)
        if self.downsampling == "aps" and isinstance(layer, BlurPool2D) and layer.strides > 1:
            raise ValueError(
                f"Cannot convert layer '{layer.name}': a BlurPool2D subsamples on a fixed "
                "grid, which downsampling='aps' cannot keep (it would not be shift "
                "invariant). Convert the model without it, or with downsampling='blur'."
            )
        if not self.identity:
            self._check_kept(node)
        return self.clone(layer, {})(*args, **kwargs)

    def _check_kept(self, node):
        """Refuses a layer that a copy would leave unconverted (see `spatial.py`)."""
        layer = node.operation
        if isinstance(layer, CONV_TYPES + POOL_TYPES):
            return  # "valid": its border is the pad before it, converted there
        tensors = node.arguments.keras_tensors
        source = self.graph.producer(tensors[0]) if tensors else None
        if isinstance(layer, keras.layers.Cropping2D) and source and is_zero_pad(source.operation):
            return  # pad then crop (NASNet's one-pixel shift): the border is the pad's
        if is_zero_pad(layer):
            if self.padding_mode != "zero":
                users = [repr(user.operation.name) for user in self.graph.users(node)]
                raise ValueError(
                    f"Cannot convert layer '{layer.name}': its zero pad feeds layers other "
                    f"than 'valid' convs and pools ({', '.join(users)}), so it cannot be "
                    f"re-padded in padding_mode='{self.padding_mode}' faithfully."
                )
            return
        if not is_library_layer(layer):
            check_custom(layer)
        check_copied(node)

    def _call_operation(self, node, args, kwargs):
        operation = node.operation
        if not self.identity:
            if type(operation).__name__ in SPATIAL_OPS:
                raise ValueError(
                    f"Cannot convert {_name(node)} ({type(operation).__name__}): a keras.ops "
                    "call that pads or subsamples inside; use a layer instead."
                )
            check_copied(node, _name(node))
        return operation(*args, **kwargs)

    def _call_submodel(self, layer, args, kwargs):
        if self.identity:
            return self.clone(layer, {})(*args, **kwargs)
        if id(layer) not in self.clones:
            converted, changes = Converter(
                layer,
                self.padding_mode,
                self.downsampling,
                self.blur_filter_size,
                self.blur_padding_mode,
            ).run()
            self.changes.extend((f"{layer.name}/{n}", b, a) for n, b, a in changes)
            self.clones[id(layer)] = converted
        return self.clones[id(layer)](*args, **kwargs)

    def clone(self, layer, overrides):
        """A copy of `layer` (with `overrides` in its config), weights copied on build."""
        if id(layer) in self.clones and not overrides:
            return self.clones[id(layer)]
        if isinstance(layer, keras.layers.Lambda):
            return layer  # stateless; its function is not safely re-serialisable
        config = layer.get_config() | overrides
        try:
            new = type(layer).from_config(config)
        except Exception as error:  # noqa: BLE001 - any failure means no faithful copy
            raise ValueError(
                f"Cannot convert layer '{layer.name}': it cannot be rebuilt from its "
                f"config ({type(error).__name__}: {error})."
            ) from error
        new = WeightCopier(layer, new)
        if not overrides:
            self.clones[id(layer)] = new
        return new

    def _insert_pad(self, layer, x, pads, replaces=None):
        """`x` padded by `pads` in `padding_mode`; `replaces` is the zero pad it stands
        for (whose name it takes), if any."""
        if pads == ((0, 0), (0, 0)):
            if replaces is not None:
                self.changes.append((replaces.name, describe(replaces), "removed"))
            return x
        pad = Padding2D(
            pads,
            self.padding_mode,
            data_format=getattr(layer, "data_format", None),
            name=replaces.name if replaces is not None else self.unique(f"{layer.name}_pad"),
            dtype=layer.dtype_policy,
        )
        before = "-" if replaces is None else describe(replaces)
        self.changes.append((pad.name, before, describe(pad)))
        return self._pad(pad, layer, x)

    def _pad(self, pad, layer, x):
        """`pad(x)` for `layer`, refusing a map too small for the mode by its name."""
        try:
            return pad(x)
        except ValueError as error:
            raise ValueError(
                f"Cannot convert layer '{layer.name}': {error}; a {self.padding_mode} pad "
                "of this width needs a larger map here: build the model on a larger input."
            ) from error

    def _call_same(self, layer, strides, args, kwargs):
        """A `"same"` conv or pool in `padding_mode` at `strides` (its own when None)."""
        overrides = {} if strides is None else {"strides": strides}
        x = args[0]
        pads = layer_same_padding(layer, tuple(x.shape), strides)
        if self.padding_mode == "zero" or pads == ((0, 0), (0, 0)):
            new = self.clone(layer, overrides)
            if overrides:
                self.changes.append((layer.name, describe(layer), describe(new.layer)))
            return new(*args, **kwargs)
        if pads is None:
            raise ValueError(
                f"Cannot convert layer '{layer.name}': TensorFlow's 'same' pad at stride "
                f"{window_of(layer)[1]} depends on the input size, which is unknown here "
                f"(input shape {tuple(x.shape)}). Build the model with a fixed input size."
            )
        x = self._insert_pad(layer, x, pads)
        new = self.clone(layer, overrides | {"padding": "valid"})
        self.changes.append((layer.name, describe(layer), describe(new.layer)))
        return new(x, *args[1:], **kwargs)

    def _call_padded_conv(self, layer, overrides, args, kwargs):
        if layer.padding_mode in ("zero", "reflect", "replicate", "circular"):
            if layer.padding_mode != self.padding_mode:
                overrides = overrides | {"padding_mode": self.padding_mode}
        if not overrides:
            return self.clone(layer, {})(*args, **kwargs)
        new = self.clone(layer, overrides)
        self.changes.append((layer.name, describe(layer), describe(new.layer)))
        return new(*args, **kwargs)

    def _call_site(self, node, args, kwargs):
        layer = node.operation
        _, _, stride, replaced = self.plan.sites[id(node)]
        if replaced:  # blur: an average pool becomes BlurPool2D
            new = BlurPool2D(
                self.blur_filter_size,
                stride,
                self.blur_padding_mode,
                data_format=layer.data_format,
                name=layer.name,
                dtype=layer.dtype_policy,
            )
            self.changes.append((layer.name, describe(layer), describe(new)))
            return new(*args, **kwargs)
        stride_one = {"strides": (1, 1)}
        if isinstance(layer, PaddedConv2D):
            return self._call_padded_conv(layer, stride_one, args, kwargs)
        if layer.padding == "same":
            return self._call_same(layer, (1, 1), args, kwargs)
        x = args[0]
        if self.downsampling == "aps":
            # The stride-1 "same" pad keeps the map even; it replaces any zero pad
            # before the window (see Plan._absorb_pad).
            pad_node = self.graph.producer(node.arguments.keras_tensors[0])
            pads = layer_same_padding(layer, tuple(x.shape), (1, 1))
            absorbed = pad_node is not None and id(pad_node) in self.plan.absorbed
            x = self._insert_pad(layer, x, pads, pad_node.operation if absorbed else None)
        new = self.clone(layer, stride_one)
        self.changes.append((layer.name, describe(layer), describe(new.layer)))
        return new(x, *args[1:], **kwargs)

    def _sample(self, anchor, site, x):
        layer = anchor.operation
        stride = self.plan.sites[id(site)][2]
        if self.downsampling == "blur":
            blur = BlurPool2D(
                self.blur_filter_size,
                stride,
                self.blur_padding_mode,
                data_format=getattr(site.operation, "data_format", None),
                name=self.unique(f"{layer.name}_blur"),
                dtype=layer.dtype_policy,
            )
            self.changes.append((blur.name, "-", describe(blur)))
            return blur(x)
        group = self.plan.groups[id(site)]
        key = ("aps", id(group[0]))
        if key not in self.done:
            anchors = [self.plan.sites[id(member)][1] for member in group]
            values = [self.raw_outputs(a)[0] for a in anchors]
            for member, value in zip(group, values):
                self._check_even(member.operation, value)
            leader = group[0].operation
            aps = AdaptivePolyphaseSampling2D(
                data_format=getattr(leader, "data_format", None),
                name=self.unique(f"{anchors[0].operation.name}_aps"),
                dtype=leader.dtype_policy,
            )
            sampled = aps(values) if len(values) > 1 else [aps(values[0])]
            names = [repr(a.operation.name) for a in anchors]
            after = f"AdaptivePolyphaseSampling2D(on {names[0]}"
            if len(names) > 1:
                after += f", its index shared with {', '.join(names[1:])}"
            self.changes.append((aps.name, "-", after + ")"))
            self.done[key] = {id(a): s for a, s in zip(anchors, sampled)}
        return self.done[key][id(anchor)]

    def _check_even(self, site, x):
        axes = (2, 3) if getattr(site, "data_format", None) == "channels_first" else (1, 2)
        sizes = [x.shape[axis] for axis in axes]
        if any(size is not None and size % 2 for size in sizes):
            image = keras.tree.flatten(self.structure[0])[0].shape
            raise ValueError(
                f"Cannot convert layer '{site.name}': adaptive polyphase sampling needs a "
                f"map of even size, and the map it subsamples is {sizes[0]}x{sizes[1]} px "
                f"(the model's input is {image[axes[0]]}x{image[axes[1]]} px, its total "
                f"stride {self.plan.total_stride}): use an input size that the total "
                "stride divides."
            )

    def run(self):
        for node in self.graph.nodes:
            self.outputs(node)
        if isinstance(self.model, Backbone):
            stages = {name: self.value(t) for name, t in self.stages.items()}
            inputs = [self.value(t) for t in self.model.inputs]
            converted = Backbone(
                inputs[0] if len(inputs) == 1 else inputs,
                stages,
                padding_mode=self.padding_mode,
                name=self.model.name,
            )
        else:
            inputs = keras.tree.map_structure(self.value, self.structure[0])
            outputs = keras.tree.map_structure(self.value, self.structure[1])
            converted = keras.Model(inputs, outputs, name=self.model.name)
        return converted, self.changes


def _name(node):
    """How an error names a node: a layer, or a keras.ops call in the graph."""
    operation = node.operation
    kind = "layer" if isinstance(operation, keras.layers.Layer) else "operation"
    return f"{kind} '{operation.name}'"
