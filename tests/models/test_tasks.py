import os

import keras
import numpy as np
import pytest

from tfposenc.models import AugShift, Classifier, GAPNet, NiNBackbone, PermuteNet, ResNetBackbone


def tiny_backbone(**kwargs):
    return ResNetBackbone(depth=18, stem="cifar", width=4, **kwargs)


def _make(kind):
    if kind == "gapnet":
        return GAPNet(tiny_backbone(), 4)
    if kind == "permutenet":
        return PermuteNet(tiny_backbone(), 4, seed=3)
    if kind == "classifier":
        return Classifier(tiny_backbone(), 4)
    if kind == "augshift":
        return AugShift(Classifier(tiny_backbone(), 4), max_shift=3, seed=1)
    if kind == "nin_gapnet":
        return GAPNet(NiNBackbone(width=8, dropout=0.0), 4)
    raise AssertionError(kind)


def make(kind):
    model = _make(kind)
    model.jit_compile = False  # XLA compiles slowly on CPU; tests run plain TF graphs.
    return model


KINDS = ["gapnet", "permutenet", "classifier", "augshift", "nin_gapnet"]


def data(n=16, size=16, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    x = rng.normal(size=(n, size, size, 3)).astype("float32") * 0.1
    # A learnable signal: class c brightens quadrant c by c + 1 (position and intensity,
    # so a permutation-invariant read-out can learn it too).
    for i, c in enumerate(y):
        r, col = divmod(int(c), 2)
        x[i, r * size // 2 : (r + 1) * size // 2, col * size // 2 : (col + 1) * size // 2] += (
            c + 1.0
        )
    return x, y


def test_gapnet_has_no_dense_layer():
    model = make("gapnet")

    def walk(layer):
        yield layer
        for child in getattr(layer, "layers", []):
            yield from walk(child)

    layers = list(walk(model))
    assert len(layers) > 50  # the whole ResNet was visited
    assert not any(isinstance(layer, keras.layers.Dense) for layer in layers)
    assert model(np.zeros((2, 16, 16, 3), "float32")).shape == (2, 4)


def test_permutenet_differs_between_calls_and_shuffles_in_predict():
    model = make("permutenet")
    x, _ = data(4)
    a = model.predict(x, verbose=0)
    b = model.predict(x, verbose=0)
    assert not np.allclose(a, b)
    # predict's output is the dense layer on *shuffled* features, not the plain ones.
    pooled = keras.ops.convert_to_numpy(model.pooled_features(x))
    kernel, bias = model.dense.get_weights()
    assert not np.allclose(a, pooled @ kernel + bias, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_keras_file_round_trip(kind, tmp_path):
    model = make(kind)
    x, y = data(8)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
        run_eagerly=True,  # tracing a ResNet step costs ~6 s; eager steps ~0.3 s
    )
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    for _ in range(2):  # twice: a seeded shuffle continues the same sequence
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x))
        )


@pytest.mark.parametrize("kind", ["gapnet", "permutenet", "classifier", "nin_gapnet"])
def test_fit_lowers_loss(kind):
    keras.utils.set_random_seed(0)
    model = make(kind)
    x, y = data(16)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
        run_eagerly=True,  # tracing a ResNet step costs ~6 s; eager steps ~0.3 s
    )

    def loss():  # averaged over several calls: PermuteNet draws a new shuffle per call
        return np.mean([model.evaluate(x, y, verbose=0) for _ in range(5)])

    before = loss()
    model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert loss() < before


def test_augshift_reports_both_terms_and_consistency_falls():
    keras.utils.set_random_seed(0)
    model = make("augshift")
    model.consistency_weight = 5.0
    x, y = data(16)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False, run_eagerly=True)
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0).history
    assert {"loss", "cross_entropy", "latent_mse"} <= set(history)
    assert history["latent_mse"][-1] < history["latent_mse"][0]
    assert history["cross_entropy"][-1] < history["cross_entropy"][0]
    evaluated = model.evaluate(x, y, verbose=0, return_dict=True)
    assert "latent_mse" not in evaluated and evaluated["cross_entropy"] > 0
    # evaluate/predict run the plain classifier on unshifted images.
    np.testing.assert_array_equal(
        model.predict(x, verbose=0), keras.ops.convert_to_numpy(model.classifier(x))
    )


def test_augshift_views_share_content():
    model = make("augshift")
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    first, second = (keras.ops.convert_to_numpy(v) for v in model.make_views(x))
    assert first.shape == second.shape == x.shape
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("kind", ["gapnet", "permutenet", "classifier"])
def test_ablate_zeroes_pooled_features_and_restores(kind):
    model = make(kind)
    x, _ = data(4)
    base_pooled = keras.ops.convert_to_numpy(model.pooled_features(x))
    base_logits = keras.ops.convert_to_numpy(model(x)) if kind != "permutenet" else None
    channels = [0, 1, 2, 3, 5]
    model.ablate(channels)
    assert model.ablated_channels == channels
    pooled = keras.ops.convert_to_numpy(model.pooled_features(x))
    assert np.all(pooled[:, channels] == 0)
    keep = [c for c in range(pooled.shape[1]) if c not in channels]
    np.testing.assert_allclose(pooled[:, keep], base_pooled[:, keep], rtol=1e-6)
    if base_logits is not None:
        assert not np.allclose(keras.ops.convert_to_numpy(model(x)), base_logits)
    model.ablate([])
    assert model.ablated_channels == []
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.pooled_features(x)), base_pooled)
    if base_logits is not None:
        np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), base_logits, rtol=1e-6)


def test_ablation_survives_keras_file(tmp_path):
    model = make("classifier")
    model.ablate([1, 2])
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    assert keras.models.load_model(path).ablated_channels == [1, 2]


def test_mixed_precision_logits_are_float32():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = make("gapnet")
    assert model(np.zeros((1, 16, 16, 3), "float32")).dtype == "float32"


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: GAPNet(tiny_backbone(), 0), "Received: num_outputs=0"),
        (lambda: PermuteNet(keras.layers.Dense(3), 4), "Received: backbone=Dense"),
        (lambda: Classifier("resnet", 4), "Received: backbone=str"),
        (lambda: AugShift(keras.Sequential(), max_shift=2), "Received: classifier=Sequential"),
        (lambda: AugShift(Classifier(tiny_backbone(), 2), max_shift=-1), "Received: max_shift=-1"),
        (
            lambda: AugShift(Classifier(tiny_backbone(), 2), consistency_weight=-1),
            "consistency_weight",
        ),
        (
            lambda: AugShift(Classifier(tiny_backbone(), 2), shift_mode="zoom"),
            "Received: shift_mode='zoom'",
        ),
        (lambda: AugShift(Classifier(tiny_backbone(), 2), mode="zoom"), "shift_mode='zoom'"),
        (lambda: GAPNet(tiny_backbone(), 2, head_kernel_size=2), "head_kernel_size=2"),
        (lambda: GAPNet(tiny_backbone(), 2, mean=[0.1, "x"]), "Received: mean="),
        (lambda: Classifier(tiny_backbone(), 2, std=[0.1, 0.0, 0.2]), "Received: std="),
        # Issue 32 E7: pixel-unit statistics used to be accepted and train at chance.
        (
            lambda: Classifier(tiny_backbone(), 2, mean=[125.3, 123, 113.9], std=[0.2] * 3),
            r"`mean` values must be in \[0, 1\] units.*divide them by 255.*Received: mean=",
        ),
        (
            lambda: Classifier(tiny_backbone(), 2, mean=[0.5] * 3, std=[63, 62.1, 66.7]),
            r"`std` values must be in \[0, 1\] units.*divide them by 255.*Received: std=",
        ),
        (lambda: GAPNet(tiny_backbone(), 2, mean=[-0.1, 0.2, 0.3]), "`mean` values must be in"),
    ],
)
def test_bad_arguments(build, match):
    with pytest.raises(ValueError, match=match):
        build()
