"""The one place that picks precision and engine: decisions for given devices."""

import types

import pytest
import tensorflow as tf

from trainers.framework import engines, strategy

GPU = [tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")]


@pytest.mark.parametrize(
    "gpus, bfloat16_cpu, expected",
    [
        (GPU, False, "mixed_float16"),
        (GPU, True, "mixed_float16"),  # a GPU wins over a bfloat16 CPU
        ([], True, "mixed_bfloat16"),
        ([], False, "float32"),
    ],
)
def test_auto_precision_for_each_device_set(gpus, bfloat16_cpu, expected):
    assert strategy.resolve_precision("auto", gpus=gpus, bfloat16_cpu=bfloat16_cpu) == expected


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_an_explicit_precision_is_kept_whatever_the_devices(precision):
    for gpus in (GPU, []):
        assert strategy.resolve_precision(precision, gpus=gpus, bfloat16_cpu=False) == precision


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="Received: precision='half'"):
        strategy.resolve_precision("half")
    with pytest.raises(ValueError, match="Received: strategy='tpu'"):
        strategy.make_strategy("tpu")
    with pytest.raises(ValueError, match="Received: strategy='multi_worker'"):
        strategy.make_strategy("multi_worker")


def test_single_process_engines_write_and_agree_with_themselves(tmp_path):
    config = types.SimpleNamespace(strategy="one_device", devices=(), collective="auto")
    engine = strategy.make_engine(config)
    assert isinstance(engine, engines.SingleProcess) and engine.writes
    assert engine.strategy.num_replicas_in_sync == 1
    assert engine.description == {
        "strategy": "OneDeviceStrategy",
        "replicas_in_sync": 1,
        "workers": 1,
    }
    assert engine.agree([1, 0, True]) == [True, False, True]
    with engine.directory(str(tmp_path)) as out:
        assert out == str(tmp_path)
