"""The controls of Table 1: gapnet1x1 == classifier, a head that cannot see the border,
SortNet's invariance, a classifier without shuffle; every control trains, saves, exports."""

import os

import keras
import numpy as np
import pytest

from tfposenc.layers import ChannelShuffle
from tfposenc.models import Classifier, GAPNet, PermuteNet, ResNetBackbone, SortNet, SumNet
from tfposenc.models.readout import readout_dense

MEAN, STD = (0.3, 0.4, 0.5), (0.2, 0.25, 0.3)


def tiny_backbone():
    return ResNetBackbone(depth=18, stem="cifar", width=4)


def make(kind, backbone=None, outputs=4):
    backbone = backbone or tiny_backbone()
    stats = dict(mean=MEAN, std=STD)
    if kind == "gapnet1x1":
        return GAPNet(backbone, outputs, head_kernel_size=1, **stats)
    if kind == "classifier":
        return Classifier(backbone, outputs, **stats)
    if kind == "sortnet":
        return SortNet(backbone, outputs, **stats)
    if kind == "sumnet":
        return SumNet(backbone, outputs, **stats)
    if kind == "permutenet":
        return PermuteNet(backbone, outputs, seed=0, **stats)
    raise AssertionError(kind)


def pixels(n=4, size=16, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def walk(layer):
    yield layer
    for child in getattr(layer, "layers", []):
        yield from walk(child)


def test_gapnet1x1_is_the_classifier_with_shared_weights():
    keras.utils.set_random_seed(0)
    backbone = tiny_backbone()
    gapnet, classifier = make("gapnet1x1", backbone), make("classifier", backbone)
    kernel, bias = gapnet.head_conv.get_weights()
    assert kernel.shape == (1, 1, backbone.output_channels, 4)
    classifier.dense.set_weights([kernel[0, 0], bias])
    x = pixels()
    np.testing.assert_allclose(numpy(gapnet(x)), numpy(classifier(x)), rtol=1e-4, atol=1e-5)
    # Not a coincidence of the weights: another dense kernel gives other logits.
    classifier.dense.set_weights([kernel[0, 0] + 0.1, bias])
    assert not np.allclose(numpy(gapnet(x)), numpy(classifier(x)), atol=1e-3)


def one_position_maps(size, vector):
    """`size * size` feature maps, each holding `vector` at one position, zeros elsewhere."""
    maps = np.zeros((size * size, size, size, len(vector)), "float32")
    for index in range(size * size):
        maps[index, index // size, index % size] = vector
    return maps


@pytest.mark.parametrize("size", [2, 3])
def test_1x1_head_cannot_tell_positions_from_its_padding(size):
    keras.utils.set_random_seed(1)
    backbone = tiny_backbone()
    vector = np.random.default_rng(2).normal(size=backbone.output_channels).astype("float32")
    maps = one_position_maps(size, vector)
    pooled = maps.mean(axis=(1, 2))
    one = make("gapnet1x1", backbone)
    out = numpy(one.head(maps, pooled))
    kernel, bias = one.head_conv.get_weights()
    oracle = vector @ kernel[0, 0] / size**2 + bias  # the same for every position
    np.testing.assert_allclose(out, np.tile(oracle, (size * size, 1)), rtol=1e-4, atol=1e-5)


def test_3x3_zero_padded_head_tells_positions_apart_on_a_2x2_map():
    keras.utils.set_random_seed(1)
    backbone = tiny_backbone()
    vector = np.random.default_rng(2).normal(size=backbone.output_channels).astype("float32")
    maps = one_position_maps(2, vector)
    three = GAPNet(backbone, 4, head_kernel_size=3)
    out = numpy(three.head(maps, maps.mean(axis=(1, 2))))
    kernel, bias = three.head_conv.get_weights()  # [3, 3, C, 4]
    taps = np.einsum("c,ijco->ijo", vector, kernel)
    # On a 2x2 map with one zero-padded ring, output (i, j) reads the value at (r, c)
    # with tap (r - i + 1, c - j + 1): the 2x2 block of taps starting at (r, c).
    oracle = np.stack(
        [taps[r : r + 2, c : c + 2].sum(axis=(0, 1)) / 4 + bias for r in (0, 1) for c in (0, 1)]
    )
    np.testing.assert_allclose(out, oracle, rtol=1e-4, atol=1e-5)
    assert len({tuple(np.round(row, 4)) for row in out}) == 4  # four positions, four outputs


def test_sortnet_is_invariant_to_any_permutation_of_the_pooled_channels():
    keras.utils.set_random_seed(0)
    model = make("sortnet")
    x = pixels()
    pooled = numpy(model.pooled_features(x))
    kernel, bias = model.dense.get_weights()
    expected = np.sort(pooled, axis=-1) @ kernel + bias
    np.testing.assert_allclose(numpy(model(x)), expected, rtol=1e-4, atol=1e-5)
    rng = np.random.default_rng(3)
    for _ in range(3):
        permuted = pooled[:, rng.permutation(pooled.shape[1])]
        np.testing.assert_allclose(
            numpy(model.head(None, permuted)), expected, rtol=1e-4, atol=1e-5
        )
    assert not np.allclose(pooled @ kernel + bias, expected, atol=1e-4)  # it does sort


def test_sumnet_depends_on_the_pooled_vector_only_through_its_sum():
    keras.utils.set_random_seed(0)
    model = make("sumnet")
    x = pixels()
    pooled = numpy(model.pooled_features(x))
    kernel, bias = model.dense.get_weights()
    assert kernel.shape == (1, 4)
    expected = pooled.sum(axis=-1, keepdims=True) @ kernel + bias
    np.testing.assert_allclose(numpy(model(x)), expected, rtol=1e-4, atol=1e-5)
    rng = np.random.default_rng(3)
    permuted = pooled[:, rng.permutation(pooled.shape[1])]
    moved = pooled + rng.normal(size=pooled.shape).astype("float32")
    moved -= (moved.sum(-1, keepdims=True) - pooled.sum(-1, keepdims=True)) / pooled.shape[1]
    for same_sum in (permuted, moved):  # other vectors, the same channel sum
        assert not np.allclose(same_sum, pooled)
        np.testing.assert_allclose(
            numpy(model.head(None, same_sum)), expected, rtol=1e-4, atol=1e-4
        )
    other = numpy(model.head(None, pooled + 0.5))
    assert not np.allclose(other, expected, atol=1e-3)


def test_permutenet_expected_logits_are_sumnet_with_the_row_mean_weights():
    keras.utils.set_random_seed(0)
    backbone = tiny_backbone()
    permutenet, sumnet = make("permutenet", backbone), make("sumnet", backbone)
    kernel, bias = permutenet.dense.get_weights()
    sumnet.dense.set_weights([kernel.mean(axis=0, keepdims=True), bias])
    x = pixels()
    pooled = numpy(permutenet.pooled_features(x))
    expected = numpy(permutenet.expected_logits(pooled))
    np.testing.assert_allclose(numpy(sumnet(x)), expected, rtol=1e-4, atol=1e-5)
    # The oracle: the average over the C cyclic permutations (each channel meets each
    # weight row once), through the model's own call with each permutation pinned.
    channels = pooled.shape[1]
    calls = []
    for shift in range(channels):
        permutation = np.roll(np.arange(channels), shift)
        permutenet.shuffle.sample_permutation = lambda c, p=permutation: p
        calls.append(numpy(permutenet(x)))
    np.testing.assert_allclose(np.mean(calls, axis=0), expected, rtol=1e-4, atol=1e-4)
    assert np.std(calls, axis=0).max() > 1e-3  # single permutations scatter around it


@pytest.mark.parametrize("fan_in, units", [(128, 10), (32, 4)])
def test_torch_readout_init_has_pytorch_bounds(fan_in, units):
    keras.utils.set_random_seed(0)
    bound = 1 / np.sqrt(fan_in)
    kernel, bias = readout_dense(units, fan_in, "torch").get_weights()
    assert bound >= np.abs(kernel).max() > 0.8 * bound
    assert bound >= np.abs(bias).max() > 0
    kernel, bias = readout_dense(units, fan_in).get_weights()  # Keras' Glorot, zero bias
    assert np.abs(kernel).max() > bound and not bias.any()
    assert np.abs(kernel).max() <= np.sqrt(6 / (fan_in + units))
    with pytest.raises(ValueError, match="readout_init.*Received: 'he'"):
        readout_dense(units, fan_in, "he")
    model = SumNet(tiny_backbone(), 3, readout_init="torch")
    assert model.get_config()["readout_init"] == "torch"
    assert np.abs(model.dense.get_weights()[0]).max() <= 1.0


def test_classifier_has_no_shuffle():
    keras.utils.set_random_seed(0)
    model = make("classifier")
    assert not any(isinstance(layer, ChannelShuffle) for layer in walk(model))
    x = pixels()
    kernel, bias = model.dense.get_weights()
    expected = numpy(model.pooled_features(x)) @ kernel + bias
    for _ in range(3):  # the same read-out on every call
        np.testing.assert_allclose(numpy(model(x)), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["gapnet1x1", "classifier", "sortnet", "sumnet"])
def test_trains_a_step_and_round_trips_through_keras_file(kind, tmp_path):
    keras.utils.set_random_seed(0)
    model = make(kind)
    x, y = pixels(8), np.arange(8) % 4
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
        run_eagerly=True,  # tracing a ResNet step costs seconds; eager steps less
    )
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(numpy(loaded(x)), numpy(model(x)), rtol=1e-5, atol=1e-5)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("kind", ["gapnet1x1", "classifier", "sortnet"])
def test_exports_and_serves_the_keras_answer(kind, tmp_path):
    import tensorflow as tf

    from tfposenc.export import export_saved_model

    keras.utils.set_random_seed(0)
    model = make(kind, outputs=5)
    path = export_saved_model(model, str(tmp_path), image_shape=(16, 16))
    served = tf.saved_model.load(path).signatures["serving_default"]
    x = np.random.default_rng(4).integers(0, 256, (3, 16, 16, 3)).astype("uint8")
    logits = numpy(model(x.astype("float32")))
    out = served(images=tf.constant(x))
    np.testing.assert_allclose(out["logits"].numpy(), logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(out["classes"].numpy(), np.argmax(logits, -1))


@pytest.mark.parametrize("init", ["glorot", "torch"])
def test_sumnet_starts_as_permutenets_expected_readout(init):
    """Under the same seed SumNet's kernel is the row means of the read-out matrix
    PermuteNet draws, its bias PermuteNet's: their initial logits differ by the
    permutation noise only (the one-input dense layer started ~sqrt(C) times larger)."""
    backbone = tiny_backbone()
    keras.utils.set_random_seed(3)
    permutenet = PermuteNet(backbone, 10, seed=0, readout_init=init, mean=MEAN, std=STD)
    keras.utils.set_random_seed(3)
    sumnet = SumNet(backbone, 10, readout_init=init, mean=MEAN, std=STD)
    kernel, bias = permutenet.dense.get_weights()
    np.testing.assert_allclose(sumnet.dense.get_weights()[0], kernel.mean(0, keepdims=True))
    np.testing.assert_array_equal(sumnet.dense.get_weights()[1], bias)
    x = pixels(8)
    pooled = permutenet.pooled_features(x)
    expected = numpy(permutenet.expected_logits(pooled))
    np.testing.assert_allclose(numpy(sumnet(x)), expected, rtol=1e-4, atol=1e-6)
    spread = {"sumnet": numpy(sumnet(x)).std(), "permutenet": numpy(permutenet(x)).std()}
    assert spread["sumnet"] < spread["permutenet"]
    one_input = readout_dense(10, 1, init)  # the old SumNet read-out
    old = numpy(one_input(keras.ops.sum(pooled, axis=-1, keepdims=True))).std()
    assert old > 3 * spread["permutenet"]
    # Trained weights are not overwritten by the initialisation when loaded.
    sumnet.dense.set_weights([kernel[:1] + 1.0, bias + 1.0])
    again = SumNet.from_config(sumnet.get_config())
    again.set_weights(sumnet.get_weights())
    np.testing.assert_allclose(numpy(again(x)), numpy(sumnet(x)), rtol=1e-5, atol=1e-5)
