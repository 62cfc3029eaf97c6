"""The graph walk behind `convert_model`: each node of a functional model is rebuilt on
the converted inputs, with a clone of its layer (weights copied) or its replacement."""

import keras

from tfposenc.layers import AdaptivePolyphaseSampling2D, BlurPool2D, PaddedConv2D, Padding2D
from tfposenc.models.backbone import Backbone
from tfposenc.models.resnet_backbone import blur_padding_for

from .downsampling import find_anchor, group_sites, is_site, site_strides
from .padding import (
    CONV_TYPES,
    POOL_TYPES,
    is_valid_window,
    is_zero_pad,
    layer_same_padding,
    pads_of,
    window_of,
)

# keras.ops called on symbolic tensors in a functional model become graph nodes of
# these classes; they pad or subsample inside and cannot be converted.
SPATIAL_OPS = ("Pad", "Conv", "DepthwiseConv", "SeparableConv", "MaxPool", "AveragePool")
# Layers whose padding or striding lives inside, where the converter cannot see it.
SPATIAL_ATTRIBUTES = ("padding", "strides", "pool_size", "kernel_size")


class Graph:
    """The nodes of a functional model in topological order, with their edges."""

    def __init__(self, roots):
        self.nodes, self.order, self.consumers = [], {}, {}
        self.roots = {id(t) for t in roots}
        for tensor in roots:
            self._visit(self.producer(tensor))
        for node in self.nodes:
            for tensor in node.arguments.keras_tensors:
                self.consumers.setdefault(id(tensor), []).append(node)

    @staticmethod
    def producer(tensor):
        """The node that computed `tensor`, or None for a model input."""
        history = getattr(tensor, "_keras_history", None)
        if history is None or history.operation is None:
            return None
        operation = history.operation
        if isinstance(operation, keras.layers.InputLayer):
            return None
        return operation._inbound_nodes[history.node_index]

    def _visit(self, root):
        if root is None or id(root) in self.order:
            return
        stack = [(root, iter(root.arguments.keras_tensors))]
        on_stack = {id(root)}
        while stack:
            node, inputs = stack[-1]
            for tensor in inputs:
                parent = self.producer(tensor)
                if parent is not None and id(parent) not in self.order:
                    if id(parent) not in on_stack:
                        on_stack.add(id(parent))
                        stack.append((parent, iter(parent.arguments.keras_tensors)))
                        break
            else:
                stack.pop()
                self.order[id(node)] = len(self.nodes)
                self.nodes.append(node)

    def only_consumer(self, node):
        """The one node that uses `node`'s single output, if that is all that does."""
        if len(node.outputs) != 1 or id(node.outputs[0]) in self.roots:
            return None
        users = self.consumers.get(id(node.outputs[0]), [])
        return users[0] if len(users) == 1 else None

    def users(self, node):
        return [user for tensor in node.outputs for user in self.consumers.get(id(tensor), [])]


def describe(layer):
    """A short description of a layer's border and sampling, for the change report."""
    kind = type(layer).__name__
    if isinstance(layer, (keras.layers.ZeroPadding2D,)):
        return f"{kind}({pads_of(layer)})"
    if isinstance(layer, Padding2D):
        return f"{kind}({layer.padding}, {layer.padding_mode!r})"
    if isinstance(layer, BlurPool2D):
        return f"{kind}(filter_size={layer.filter_size}, strides={layer.strides}, {layer.padding_mode!r})"
    if isinstance(layer, CONV_TYPES + POOL_TYPES):
        kernel, strides, _ = window_of(layer)
        padding = layer.padding_mode if isinstance(layer, PaddedConv2D) else layer.padding
        return f"{kind}({kernel[0]}x{kernel[1]}, strides={strides[0]}, {padding!r})"
    return kind


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
        self.graph = Graph(list(model.outputs) + list(self.stages.values()))
        self.changes = []
        self.names = {layer.name for layer in model.layers}
        self.inputs, self.raw, self.done, self.clones = {}, {}, {}, {}
        self.building = set()
        self._plan()

    # --- planning -----------------------------------------------------------------

    def _plan(self):
        graph = self.graph
        self.sites, self.anchor_site, self.groups = {}, {}, {}
        self.absorbed, self.repadded, self.unsampled = {}, set(), set()
        if self.downsampling != "stride":
            for node in graph.nodes:
                if not is_site(node.operation):
                    continue
                stride = site_strides(node.operation)
                if self.downsampling == "aps" and stride != 2:
                    raise ValueError(
                        f"Cannot convert layer '{node.operation.name}': adaptive polyphase "
                        f"sampling subsamples by 2 only. Received: strides={stride}"
                    )
                # Zhang's DenseNet: a 2x2 stride-2 average pool becomes BlurPool2D; a
                # pool wider than its stride runs at stride 1 before it, as max-pools do.
                replaced = (
                    self.downsampling == "blur"
                    and isinstance(node.operation, keras.layers.AveragePooling2D)
                    and window_of(node.operation)[0] == window_of(node.operation)[1]
                )
                anchor = node if replaced else find_anchor(node, graph)
                self.sites[id(node)] = (node, anchor, stride, replaced)
                if not replaced:
                    self.anchor_site[id(anchor)] = node
                    chain = [node]
                    while chain[-1] is not anchor:
                        chain.append(graph.only_consumer(chain[-1]))
                    self.unsampled.update(id(n) for n in chain[:-1])
                    self.unsampled.add(id(anchor))
        if self.downsampling == "aps":
            sites = [entry[0] for entry in self.sites.values()]
            for group in group_sites(graph, sites):
                for member in group:
                    self.groups[id(member)] = group
            for node, _, _, _ in self.sites.values():
                self._plan_absorbed_pad(node)
        if self.padding_mode != "zero":
            for node in graph.nodes:
                if is_zero_pad(node.operation) and id(node) not in self.absorbed:
                    users = graph.users(node)
                    if users and all(is_valid_window(u.operation) for u in users):
                        self.repadded.add(id(node))

    def _plan_absorbed_pad(self, node):
        """Under APS a zero pad before a valid strided window is replaced by the
        stride-1 "same" pad of the window, so the map keeps an even size."""
        layer = node.operation
        if not is_valid_window(layer) or isinstance(layer, PaddedConv2D):
            return
        tensor = node.arguments.keras_tensors[0]
        pad = self.graph.producer(tensor)
        if pad is None or not is_zero_pad(pad.operation):
            return
        if self.graph.only_consumer(pad) is not node:
            raise ValueError(
                f"Cannot convert layer '{pad.operation.name}': under adaptive polyphase "
                f"sampling its pad must feed only the strided '{layer.name}', which gets "
                "a stride-1 pad of its own, but it feeds other layers too."
            )
        self.absorbed[id(pad)] = node
        self.unsampled.add(id(pad))

    # --- building -----------------------------------------------------------------

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
        site = self.anchor_site.get(id(node))
        if site is not None:
            outputs = [self._sample(node, site, outputs[0])]
        if id(node) not in self.unsampled or site is not None:
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
            raise ValueError(f"Cannot convert layer '{node.operation.name}': {error}") from error
        outputs = keras.tree.flatten(result)
        self.raw[id(node)] = outputs
        self.building.discard(id(node))
        return outputs

    def _call(self, node, args, kwargs):
        layer = node.operation
        if id(node) in self.absorbed:
            return args[0]  # the strided window re-pads (see _plan_absorbed_pad)
        if id(node) in self.repadded:
            new = Padding2D(
                pads_of(layer),
                self.padding_mode,
                data_format=getattr(layer, "data_format", None),
                name=layer.name,
                dtype=layer.dtype_policy,
            )
            self.changes.append((layer.name, describe(layer), describe(new)))
            return new(*args, **kwargs)
        if not isinstance(layer, keras.layers.Layer):
            return self._call_operation(layer, args, kwargs)
        if isinstance(layer, keras.Model) and hasattr(layer, "_inbound_nodes"):
            if hasattr(layer, "outputs") and layer.outputs is not None:
                return self._call_submodel(layer, args, kwargs)
        if id(node) in self.sites:
            return self._call_site(node, args, kwargs)
        if isinstance(layer, PaddedConv2D):
            return self._call_padded_conv(layer, {}, args, kwargs)
        if isinstance(layer, CONV_TYPES + POOL_TYPES) and layer.padding == "same":
            return self._call_same(layer, None, args, kwargs)
        return self.clone(layer, {})(*args, **kwargs)

    def _call_operation(self, operation, args, kwargs):
        if not self.identity and type(operation).__name__ in SPATIAL_OPS:
            raise ValueError(
                f"Cannot convert operation '{operation.name}' ({type(operation).__name__}): "
                "a keras.ops call that pads or subsamples inside; use a layer instead."
            )
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
        if not self.identity and not _is_library_layer(layer):
            _check_custom(layer)
        config = layer.get_config() | overrides
        try:
            new = type(layer).from_config(config)
        except Exception as error:  # noqa: BLE001 - any failure means no faithful copy
            raise ValueError(
                f"Cannot convert layer '{layer.name}': it cannot be rebuilt from its "
                f"config ({type(error).__name__}: {error})."
            ) from error
        new = _WeightCopier(layer, new)
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
        return pad(x)

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
        _, _, stride, replaced = self.sites[id(node)]
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
            # before the window (see _plan_absorbed_pad).
            pad_node = self.graph.producer(node.arguments.keras_tensors[0])
            pads = layer_same_padding(layer, tuple(x.shape), (1, 1))
            absorbed = pad_node is not None and id(pad_node) in self.absorbed
            x = self._insert_pad(layer, x, pads, pad_node.operation if absorbed else None)
        new = self.clone(layer, stride_one)
        self.changes.append((layer.name, describe(layer), describe(new.layer)))
        return new(x, *args[1:], **kwargs)

    def _sample(self, anchor, site, x):
        layer = anchor.operation
        stride = self.sites[id(site)][2]
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
        group = self.groups[id(site)]
        key = ("aps", id(group[0]))
        if key not in self.done:
            anchors = [self.sites[id(member)][1] for member in group]
            values = [self.raw_outputs(a)[0] for a in anchors]
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
            inputs = keras.tree.map_structure(self.value, self.model._inputs_struct)
            outputs = keras.tree.map_structure(self.value, self.model._outputs_struct)
            converted = keras.Model(inputs, outputs, name=self.model.name)
        return converted, self.changes


class _WeightCopier:
    """Calls a fresh layer and copies the original's weights into it once it is built."""

    def __init__(self, original, layer):
        self.original, self.layer, self.copied = original, layer, False

    def __call__(self, *args, **kwargs):
        outputs = self.layer(*args, **kwargs)
        if not self.copied:
            copy_weights(self.original, self.layer)
            self.copied = True
        return outputs


def copy_weights(source, target):
    """Assigns every weight of `source` to the same weight of `target`, in place."""
    old, new = source.weights, target.weights
    if len(old) != len(new) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(old, new)):
        raise ValueError(
            f"Cannot convert layer '{source.name}': the rebuilt layer's weights "
            f"({[tuple(w.shape) for w in new]}) differ from the original's "
            f"({[tuple(w.shape) for w in old]})."
        )
    for a, b in zip(old, new):
        b.assign(a.value)


def _is_library_layer(layer):
    module = type(layer).__module__
    return module.startswith(("keras.", "tfposenc.", "keras_hub."))


def _check_custom(layer):
    """A layer from outside Keras and tfposenc may pad or subsample where the converter
    cannot see it: refuse it if it holds convs, pools or padding of its own."""
    inner = [
        sub
        for sub in layer._flatten_layers(include_self=False)
        if isinstance(sub, CONV_TYPES + POOL_TYPES + (keras.layers.ZeroPadding2D, Padding2D))
    ]
    spatial = [name for name in SPATIAL_ATTRIBUTES if hasattr(layer, name)]
    if inner or spatial:
        what = f"layers {[s.name for s in inner]}" if inner else f"attributes {spatial}"
        raise ValueError(
            f"Cannot convert layer '{layer.name}' ({type(layer).__name__}): a custom layer "
            f"with internal padding or striding ({what}) cannot be converted faithfully. "
            "Rewrite it with Keras conv, pool and ZeroPadding2D layers, or convert it "
            "by hand with tfposenc.layers."
        )
