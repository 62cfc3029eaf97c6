"""What `convert_model` changes where, decided on the whole graph before rebuilding.

A `Plan` finds the sites (strided convs and pools) and where each is subsampled (its
anchor, see `downsampling.py`), which sites share one polyphase index under APS, which
zero pads are absorbed by a strided window or re-padded in another mode, and refuses,
before anything is built, the layers that polyphase sampling cannot reproduce.
"""

import keras

from tfposenc.layers import PaddedConv2D

from .downsampling import find_anchor, group_sites, is_site, site_strides
from .padding import is_valid_window, is_zero_pad, pads_of, window_of


class Plan:
    """Sites, anchors, APS groups and pads to change in `graph` (see module docstring).

    Attributes:
        sites: id(site node) -> (node, anchor node, stride, replaced); `replaced` is
            True for an average pool that blur turns into `BlurPool2D` itself.
        anchor_site: id(anchor node) -> the site subsampled after it.
        groups: id(site node) -> the list of sites sharing its APS index, leader first.
        absorbed: id(zero pad node) -> the strided window whose stride-1 pad replaces it.
        repadded: ids of zero pads re-padded in `padding_mode`.
        unsampled: ids of the nodes between a site and its anchor (and absorbed pads),
            whose outputs are at full resolution in the converted model.
        total_stride: the largest product of strides from an input to any node.
    """

    def __init__(self, graph, padding_mode, downsampling):
        self.graph = graph
        self.sites, self.anchor_site, self.groups = {}, {}, {}
        self.absorbed, self.repadded, self.unsampled = {}, set(), set()
        self.total_stride = _total_stride(graph)
        if downsampling != "stride":
            for node in graph.nodes:
                if is_site(node.operation):
                    self._add_site(node, downsampling)
        if downsampling == "aps":
            sites = [entry[0] for entry in self.sites.values()]
            for group in group_sites(graph, sites):
                for member in group:
                    self.groups[id(member)] = group
            for node, _, _, _ in self.sites.values():
                self._absorb_pad(node)
        if padding_mode != "zero":
            for node in graph.nodes:
                if is_zero_pad(node.operation) and id(node) not in self.absorbed:
                    users = graph.users(node)
                    if users and all(_reads_pad(u.operation) for u in users):
                        self.repadded.add(id(node))

    def _add_site(self, node, downsampling):
        graph, layer = self.graph, node.operation
        stride = site_strides(layer)
        if downsampling == "aps":
            self._check_aps(node, stride)
        # Zhang's DenseNet: a 2x2 stride-2 average pool becomes BlurPool2D; a pool
        # wider than its stride runs at stride 1 before it, as max-pools do.
        replaced = (
            downsampling == "blur"
            and isinstance(layer, keras.layers.AveragePooling2D)
            and window_of(layer)[0] == window_of(layer)[1]
        )
        anchor = node if replaced else find_anchor(node, graph)
        self.sites[id(node)] = (node, anchor, stride, replaced)
        if not replaced:
            self.anchor_site[id(anchor)] = node
            chain = [node]
            while chain[-1] is not anchor:
                chain.append(graph.only_consumer(chain[-1]))
            self.unsampled.update(id(n) for n in chain)

    def _check_aps(self, node, stride):
        """Refuses a site that polyphase sampling cannot stand in for at any input
        size: a stride other than 2, a "valid" window that shrinks the map."""
        layer = node.operation
        if stride != 2:
            raise ValueError(
                f"Cannot convert layer '{layer.name}': adaptive polyphase sampling "
                f"subsamples by 2 only. Received: strides={stride}"
            )
        kernel, _, dilation = window_of(layer)
        if is_valid_window(layer):
            pad = self.graph.producer(node.arguments.keras_tensors[0])
            padded = pads_of(pad.operation) if pad and is_zero_pad(pad.operation) else None
            for axis, (k, d) in enumerate(zip(kernel, dilation)):
                extent = (k - 1) * d + 1
                total = sum(padded[axis]) if padded else 0
                # Out = (n + total - extent) // 2 + 1 against APS's n / 2 (n even):
                # equal only when extent - total is 1 or 2.
                if extent - total not in (1, 2):
                    raise ValueError(
                        f"Cannot convert layer '{layer.name}' ({type(layer).__name__} "
                        f"{kernel[0]}x{kernel[1]}, strides=2, 'valid', {total} px of pad "
                        f"before it): a 'valid' stride-2 window that shrinks the map to "
                        f"(n + {total} - {extent}) // 2 + 1 cannot be replaced by adaptive "
                        "polyphase sampling, which keeps n / 2, at any input size. "
                        "Architectures built on such layers (Inception, Xception) cannot "
                        "take downsampling='aps'."
                    )

    def _absorb_pad(self, node):
        """Under APS a zero pad before a valid strided window is replaced by the
        stride-1 "same" pad of the window, so the map keeps an even size."""
        layer = node.operation
        if not is_valid_window(layer) or isinstance(layer, PaddedConv2D):
            return
        pad = self.graph.producer(node.arguments.keras_tensors[0])
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


def _total_stride(graph):
    """The largest product of site strides on any path from an input."""
    strides = {}
    for node in graph.nodes:
        parents = [graph.producer(t) for t in node.arguments.keras_tensors]
        before = max((strides[id(p)] for p in parents if p is not None), default=1)
        own = window_of(node.operation)[1][0] if is_site(node.operation) else 1
        strides[id(node)] = before * own
    return max(strides.values(), default=1)


def _reads_pad(layer):
    """A layer whose border is the pad before it: a "valid" conv or pool, or a crop
    (a pad then a crop shifts the map, as NASNet does, with the pad's border)."""
    return is_valid_window(layer) or isinstance(layer, keras.layers.Cropping2D)
