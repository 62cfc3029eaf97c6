"""The graph walk, and models nested in models (ConvNeXt's Sequential blocks)."""

import keras
import numpy as np
import pytest

from tfposenc.convert import convert_model
from tfposenc.convert.graph import Graph, structure

OPTIONS = [("circular", "stride"), ("reflect", "blur"), ("circular", "aps"), ("zero", "aps")]


def block_layers(seed):
    """A ConvNeXt-like downsampling block: a normalisation and a 2x2 stride-2 conv,
    then a 3x3 'same' conv."""
    keras.utils.set_random_seed(seed)
    return [
        keras.layers.LayerNormalization(epsilon=1e-6),
        keras.layers.Conv2D(8, 2, strides=2),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
    ]


def nested_and_flat(size=16):
    """The same layers (shared weights) as nested Sequential blocks and called flat."""
    stem = keras.layers.Conv2D(8, 3, padding="same", name="stem")
    blocks = [block_layers(seed) for seed in (1, 2)]
    pool = keras.layers.GlobalAveragePooling2D()

    inputs = keras.Input((size, size, 3))
    x = stem(inputs)
    for index, layers in enumerate(blocks):
        x = keras.Sequential([keras.Input(x.shape[1:]), *layers], name=f"block{index}")(x)
    nested = keras.Model(inputs, pool(x))

    inputs = keras.Input((size, size, 3))
    x = stem(inputs)
    for layers in blocks:
        for layer in layers:
            x = layer(x)
    return nested, keras.Model(inputs, pool(x))


def test_structure_of_functional_sequential_and_subclassed_models():
    nested, _ = nested_and_flat()
    inputs, outputs = structure(nested)
    assert inputs is nested.input and outputs is nested.output
    block = nested.get_layer("block0")
    assert structure(block)[0].shape == (None, 16, 16, 8)
    assert structure(keras.Sequential([keras.layers.Dense(2)])) is None  # never built

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert structure(Subclassed()) is None


def test_graph_orders_nodes_after_their_inputs():
    _, flat = nested_and_flat()
    graph = Graph(flat.outputs)
    assert [node.operation.name for node in graph.nodes][0] == "stem"
    for node in graph.nodes:
        for tensor in node.arguments.keras_tensors:
            parent = graph.producer(tensor)
            assert parent is None or graph.order[id(parent)] < graph.order[id(node)]
    assert len(graph.nodes) == len(flat.layers) - 1  # every layer but the input


@pytest.mark.parametrize("padding_mode, downsampling", OPTIONS)
def test_nested_sequential_blocks_convert_as_their_flat_model(padding_mode, downsampling):
    nested, flat = nested_and_flat()
    converted, changes = convert_model(nested, padding_mode, downsampling)
    flat_converted, flat_changes = convert_model(flat, padding_mode, downsampling)
    assert changes and len(changes) == len(flat_changes)
    assert any(name.startswith("block1/") for name, _, _ in changes)
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(converted(x), flat_converted(x), atol=1e-5)
    if (padding_mode, downsampling) == ("circular", "aps"):
        shifted = converted(np.roll(x, (3, 5), axis=(1, 2)))
        np.testing.assert_allclose(shifted, converted(x), atol=1e-5)


def test_a_nested_sequential_that_cannot_convert_is_refused_by_name():
    inputs = keras.Input((16, 16, 3))
    inner = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 4, strides=4, name="patchify")],
        name="stem",
    )
    model = keras.Model(inputs, inner(inputs))
    with pytest.raises(ValueError, match=r"layer 'stem': .*layer 'patchify'.*strides=4"):
        convert_model(model, "circular", "aps")
    converted, changes = convert_model(model, "circular", "blur")
    assert changes == [
        ("stem/patchify", "Conv2D(4x4, strides=4, 'valid')", "Conv2D(4x4, strides=1, 'valid')"),
        ("stem/patchify_blur", "-", "BlurPool2D(filter_size=4, strides=4, 'circular')"),
    ]
