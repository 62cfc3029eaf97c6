import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.harness import check_layer
from tfposenc.layers import BatchNormalization
from tfposenc.layers.batch_normalization import FUSED_ENV_VAR
from tfposenc.models import ResNetBackbone

EPSILON = 1e-5
MOMENTUM = 0.9


def make_pair(channels, fused=None, seed=0, rank=4):
    """Keras' layer and ours with the same random gamma, beta and moving statistics."""
    rng = np.random.default_rng(seed)
    weights = [
        rng.uniform(0.5, 1.5, channels),
        rng.normal(size=channels),
        rng.normal(size=channels),
        rng.uniform(0.5, 2.0, channels),
    ]
    layers = []
    for cls, kwargs in [(keras.layers.BatchNormalization, {}), (BatchNormalization, {})]:
        if cls is BatchNormalization:
            kwargs = {"fused": fused}
        layer = cls(momentum=MOMENTUM, epsilon=EPSILON, **kwargs)
        layer.build((None,) * (rank - 1) + (channels,))
        layer.set_weights([w.astype("float32") for w in weights])
        layers.append(layer)
    return layers


def train_steps(layer, batches, targets, graph):
    """Forward + backward on each batch; returns outputs, gradients and moving stats."""

    def step(x, target):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, "float32") * target)
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        return y, grads

    if graph:
        step = tf.function(step)
    history = []
    for x, target in zip(batches, targets):
        x = tf.constant(x, dtype=layer.compute_dtype)
        y, grads = step(x, tf.constant(target))
        history.append(
            [keras.ops.convert_to_numpy(tf.cast(t, "float32")) for t in [y] + list(grads)]
        )
    stats = [layer.moving_mean.numpy(), layer.moving_variance.numpy()]
    return history, stats


def graph_op_types(layer, x, training):
    fn = tf.function(lambda t: layer(t, training=training))
    graph = fn.get_concrete_function(tf.TensorSpec(x.shape, x.dtype)).graph
    return {op.type for op in graph.get_operations()}


def test_layer_round():
    check_layer(lambda: BatchNormalization(momentum=0.9, epsilon=1e-5), (2, 8, 8, 3), (2, 8, 8, 3))


def test_numpy_oracle_training_and_inference():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=(4, 5, 6, 3)).astype("float32")
    _, layer = make_pair(3)
    gamma, beta, mean0, var0 = layer.get_weights()
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))  # biased, as Keras
    expected = gamma * (x - mean) / np.sqrt(var + EPSILON) + beta
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.9 * mean0 + 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.9 * var0 + 0.1 * var, rtol=1e-5)
    _, mean1, var1 = layer.get_weights()[1:]
    out = keras.ops.convert_to_numpy(layer(x, training=False))
    np.testing.assert_allclose(
        out, gamma * (x - mean1) / np.sqrt(var1 + EPSILON) + beta, rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_equals_keras_batch_normalization(policy, graph):
    keras.mixed_precision.set_global_policy(policy)
    rng = np.random.default_rng(2)
    batches = [rng.normal(1.0, 2.0, size=(4, 6, 6, 5)).astype("float32") for _ in range(3)]
    targets = [rng.normal(size=(4, 6, 6, 5)).astype("float32") for _ in range(3)]
    reference, layer = make_pair(5)
    assert "FusedBatchNormV3" in graph_op_types(layer, tf.constant(batches[0]), True)
    expected, expected_stats = train_steps(reference, batches, targets, graph)
    got, got_stats = train_steps(layer, batches, targets, graph)
    # float32: the same numbers up to summation order; bfloat16: outputs and input
    # gradients are rounded to 8 significant bits (relative error 2^-8 of values ~4).
    atol, rtol = (1e-4, 1e-4) if policy == "float32" else (0.05, 0.02)
    for step_expected, step_got in zip(expected, got):
        for name, e, g in zip(("output", "dx", "dgamma", "dbeta"), step_expected, step_got):
            np.testing.assert_allclose(g, e, atol=atol * max(1, np.abs(e).max()), err_msg=name)
    # The moving statistics are float32 in both policies, from the same bf16 inputs.
    stats_tol = 1e-5 if policy == "float32" else 1e-4
    for e, g in zip(expected_stats, got_stats):
        np.testing.assert_allclose(g, e, rtol=stats_tol, atol=stats_tol)
    x = tf.constant(batches[0], dtype=layer.compute_dtype)
    for trainable, training in ((True, False), (False, True)):
        # Inference uses the moving statistics; a frozen layer is in inference mode too.
        reference.trainable = layer.trainable = trainable
        e = keras.ops.convert_to_numpy(tf.cast(reference(x, training=training), "float32"))
        g = keras.ops.convert_to_numpy(tf.cast(layer(x, training=training), "float32"))
        np.testing.assert_allclose(g, e, atol=atol * max(1, np.abs(e).max()), rtol=rtol)
    assert layer(x).dtype == reference(x).dtype == keras.backend.standardize_dtype(x.dtype)


def test_inference_gradient_equals_keras():
    reference, layer = make_pair(3)
    x = tf.constant(np.random.default_rng(3).normal(size=(2, 4, 4, 3)).astype("float32"))
    grads = []
    for bn in (reference, layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(bn(x, training=False) ** 2)
        grads.append(tape.gradient(loss, [x, bn.gamma, bn.beta]))
    for e, g in zip(*grads):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-4, atol=1e-4)


def test_weights_and_names_match_keras():
    reference, layer = make_pair(4)
    assert [w.path.split("/")[-1] for w in layer.weights] == [
        w.path.split("/")[-1] for w in reference.weights
    ]
    assert [w.trainable for w in layer.weights] == [w.trainable for w in reference.weights]
    # Files address layers by snake-cased class name: Keras' and ours agree.
    assert keras.src.utils.naming.to_snake_case(type(layer).__name__) == "batch_normalization"
    fresh = BatchNormalization()
    fresh.build((None, 4))
    fresh.set_weights(reference.get_weights())
    for a, b in zip(fresh.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_backbone_file_saved_with_keras_batch_norm_loads(tmp_path, monkeypatch):
    import tfposenc.models.resnet_backbone as resnet_module

    x = np.random.default_rng(4).normal(size=(2, 16, 16, 3)).astype("float32")
    # The backbone as it was built before this layer existed: Keras' BatchNormalization.
    with monkeypatch.context() as patch:
        patch.setattr(resnet_module, "BatchNormalization", keras.layers.BatchNormalization)
        old = ResNetBackbone(18, "cifar", 2)
        assert type(old.get_layer("stem_bn")) is keras.layers.BatchNormalization
        model = keras.Sequential([old, keras.layers.GlobalAveragePooling2D()])
        model.compile(optimizer="sgd", loss="mse")
        model.fit(x, np.zeros((2, 16)), epochs=2, verbose=0)  # non-trivial moving stats
        expected = keras.ops.convert_to_numpy(old(x))
        old.save(tmp_path / "old.keras")
        old.save_weights(tmp_path / "old.weights.h5")
    loaded = keras.saving.load_model(tmp_path / "old.keras")
    assert type(loaded.get_layer("stem_bn")) is BatchNormalization
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)), expected, rtol=1e-5, atol=1e-5
    )
    fresh = ResNetBackbone(18, "cifar", 2)
    fresh.load_weights(tmp_path / "old.weights.h5")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fresh(x)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_disabled_fast_path_runs_keras_computation(how, monkeypatch):
    if how == "argument":
        reference, layer = make_pair(3, fused=False)
    else:
        monkeypatch.setenv(FUSED_ENV_VAR, "0")
        reference, layer = make_pair(3)
    x = tf.constant(np.random.default_rng(5).normal(size=(2, 4, 4, 3)).astype("float32"))
    for training in (True, False):
        assert "FusedBatchNormV3" not in graph_op_types(layer, x, training)
    e = reference(x, training=True).numpy()
    np.testing.assert_allclose(layer(x, training=True).numpy(), e, rtol=1e-6, atol=1e-6)


def test_other_ranks_fall_back_to_keras():
    reference, layer = make_pair(3, rank=2)
    x = tf.constant(np.random.default_rng(6).normal(size=(5, 3)).astype("float32"))
    assert "FusedBatchNormV3" not in graph_op_types(layer, x, True)
    np.testing.assert_allclose(
        layer(x, training=True).numpy(), reference(x, training=True).numpy(), atol=1e-6
    )


def test_backbone_trains_with_fast_path_disabled(monkeypatch):
    monkeypatch.setenv(FUSED_ENV_VAR, "0")
    model = keras.Sequential(
        [ResNetBackbone(18, "cifar", 2), keras.layers.GlobalAveragePooling2D()]
    )
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(np.ones((2, 16, 16, 3)), np.zeros((2, 16)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    bn = model.layers[0].get_layer("stem_bn")
    assert "FusedBatchNormV3" not in graph_op_types(bn, tf.zeros((2, 16, 16, 2)), True)


def test_bad_arguments():
    with pytest.raises(
        ValueError, match="`fused` must be None, True or False. Received: fused='yes'"
    ):
        BatchNormalization(fused="yes")


@pytest.mark.slow
def test_backbone_builds_and_trains_on_jax():
    pytest.importorskip("jax")
    code = (
        "import keras, numpy as np\n"
        "from tfposenc.models import ResNetBackbone\n"
        "from tfposenc.layers import BatchNormalization\n"
        "assert keras.backend.backend() == 'jax'\n"
        "m = keras.Sequential([ResNetBackbone(18, 'cifar', 2), keras.layers.GlobalAveragePooling2D()])\n"
        "m.compile(optimizer='sgd', loss='mse')\n"
        "h = m.fit(np.ones((2, 16, 16, 3)), np.zeros((2, 16)), epochs=1, verbose=0)\n"
        "assert np.isfinite(h.history['loss'][0])\n"
        "try:\n"
        "    BatchNormalization(fused=True)\n"
        "except ValueError as e:\n"
        "    assert 'TensorFlow backend' in str(e)\n"
        "else:\n"
        "    raise AssertionError('fused=True accepted on jax')\n"
    )
    env = dict(os.environ, KERAS_BACKEND="jax")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]


MIRRORED = """
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from tfposenc.layers import BatchNormalization

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
x = np.random.default_rng(0).normal(2.0, 3.0, size=(8, 4, 4, 3)).astype("float32")
with strategy.scope():
    layers = [keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5),
              BatchNormalization(momentum=0.9, epsilon=1e-5)]
    for layer in layers:
        layer.build((None, 4, 4, 3))
dataset = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(x))
batch = next(iter(dataset))

@tf.function
def step(inputs):
    return [layer(inputs, training=True) for layer in layers]

results = strategy.run(step, args=(batch,))
# Each replica normalises its own half of the batch with its own statistics.
for index, local in enumerate(strategy.experimental_local_results(results[1])):
    half = x[4 * index: 4 * index + 4]
    expected = (half - half.mean((0, 1, 2))) / np.sqrt(half.var((0, 1, 2)) + 1e-5)
    np.testing.assert_allclose(local.numpy(), expected, rtol=1e-4, atol=1e-4)
for ours, reference in zip(strategy.experimental_local_results(results[1]),
                           strategy.experimental_local_results(results[0])):
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-5, atol=1e-5)
# The moving statistics are kept exactly as Keras' layer keeps them.
for name in ("moving_mean", "moving_variance"):
    ours = getattr(layers[1], name).numpy()
    np.testing.assert_allclose(ours, getattr(layers[0], name).numpy(), rtol=1e-5, atol=1e-6)
print("MIRRORED OK", strategy.num_replicas_in_sync)
"""


def test_mirrored_strategy_per_replica_statistics_like_keras():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "MIRRORED OK 2" in result.stdout
