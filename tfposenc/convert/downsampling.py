"""Where a network subsamples, where the anti-aliasing goes, and which subsamplings must
share one polyphase index.

A *site* is a strided conv (`Conv2D`, `DepthwiseConv2D`, `SeparableConv2D`,
`PaddedConv2D`) or a strided pool. Zhang's recipe (ICML 2019) blurs a strided conv's
output after its nonlinearity when the conv is followed directly by a normalisation
and an activation (conv, BN, ReLU, BlurPool), else right after the conv; that tensor is
the site's *anchor*. Adaptive polyphase sampling (Chaman and Dokmanic, 2021) subsamples
at the anchor too. Branches that meet again (at an `Add`, `Concatenate`, `Multiply`, or
any operation with several 4D inputs) must be subsampled at the same polyphase index,
else their sum is no shifted copy of the unshifted sum: the sites that last
subsampled each input are one *group*, and the group's leader (the widest window; on a
tie the one anchored after an activation, as the main branch of a residual block is;
then the first) chooses the index for all of them.
"""

import keras

from tfposenc.convert.padding import CONV_TYPES, POOL_TYPES, window_of
from tfposenc.layers import BatchNormalization, PaddedConv2D

NORMALIZATIONS = (keras.layers.BatchNormalization, BatchNormalization)
ACTIVATIONS = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
)


def is_site(layer):
    """A layer that subsamples: a strided conv or pool."""
    if not isinstance(layer, CONV_TYPES + POOL_TYPES + (PaddedConv2D,)):
        return False
    return window_of(layer)[1] != (1, 1)


def site_strides(layer):
    """The stride of a site, one int; raises if it differs between the axes."""
    strides = window_of(layer)[1]
    if strides[0] != strides[1]:
        raise ValueError(
            f"Cannot convert layer '{layer.name}': its strides differ between rows and "
            f"columns, which no 2D anti-aliasing aligns. Received: strides={strides}"
        )
    return strides[0]


def find_anchor(node, graph):
    """The node after which a site's output is subsampled (see the module docstring)."""
    layer = node.operation
    if not isinstance(layer, CONV_TYPES + (PaddedConv2D,)):
        return node
    following = graph.only_consumer(node)
    if following is None or not isinstance(following.operation, NORMALIZATIONS):
        return node
    activation = graph.only_consumer(following)
    if activation is None or not isinstance(activation.operation, ACTIVATIONS):
        return node
    return activation


def group_sites(graph, sites):
    """Union of the sites whose subsampled branches meet again; a list of lists of
    site nodes, each led by the node that chooses the polyphase index."""
    parent = {id(n): id(n) for n in sites}
    by_id = {id(n): n for n in sites}

    def find(key):
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    last_sites = {}  # id(node) -> frozenset of ids of the sites that last subsampled it
    for node in graph.nodes:
        if id(node) in parent:
            last_sites[id(node)] = frozenset((id(node),))
            continue
        inputs = [graph.producer(t) for t in node.arguments.keras_tensors]
        found = [last_sites.get(id(p), frozenset()) for p in inputs if p is not None]
        merged = frozenset().union(*found) if found else frozenset()
        last_sites[id(node)] = merged
        spatial = [t for t in node.arguments.keras_tensors if len(t.shape) == 4]
        if len(spatial) > 1 and len(merged) > 1:
            # Only branches at one resolution can share an index (a U-Net's skip
            # joins an upsampled branch: there is nothing to align).
            by_shape = {}
            for key in sorted(merged, key=graph.order.__getitem__):
                shape = tuple(by_id[key].outputs[0].shape[1:3])
                by_shape.setdefault(shape, []).append(key)
            for keys in by_shape.values():
                for key in keys[1:]:
                    parent[find(key)] = find(keys[0])
    groups = {}
    for node in sites:
        groups.setdefault(find(id(node)), []).append(node)

    def rank(node):
        kernel = window_of(node.operation)[0]
        after_activation = find_anchor(node, graph) is not node
        return (-kernel[0] * kernel[1], not after_activation, graph.order[id(node)])

    return [sorted(members, key=rank) for members in groups.values()] if by_id else []
