"""The one place that picks how a run trains: the precision policy and the engine.

`make_engine(config)` returns the training engine of `config.strategy`: a
`trainers.framework.engines.SingleProcess` around a `tf.distribute` strategy (`auto`,
`one_device`, `mirrored`) or a `MultiWorker` engine (`multi_worker`, from `TF_CONFIG`;
made first, before any other TensorFlow op, as TensorFlow requires). The runner talks to
the engine only, never to the strategy's kind. `set_precision` sets the Keras dtype
policy (`auto`: mixed float16 on a GPU, mixed bfloat16 on a CPU with native bfloat16,
float32 otherwise).
"""

import keras
import tensorflow as tf

from trainers.framework import engines
from trainers.framework.config import PRECISIONS, STRATEGIES
from trainers.framework.multiworker import loop


def cpu_supports_bfloat16():
    """True where the CPU has native bf16 instructions (AVX512-BF16 or AMX-BF16)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision, gpus=None, bfloat16_cpu=None):
    """The policy `precision` names; `auto` decides from the devices.

    Args:
        precision: one of `PRECISIONS`.
        gpus: the physical GPUs (default: TensorFlow's list), injectable for tests.
        bfloat16_cpu: whether the CPU has native bfloat16 (default: /proc/cpuinfo).
    """
    if precision not in PRECISIONS:
        raise ValueError(
            f"`precision` must be one of {PRECISIONS}. Received: precision={precision!r}"
        )
    if precision != "auto":
        return precision
    gpus = tf.config.list_physical_devices("GPU") if gpus is None else gpus
    if gpus:
        return "mixed_float16"
    bfloat16_cpu = cpu_supports_bfloat16() if bfloat16_cpu is None else bfloat16_cpu
    return "mixed_bfloat16" if bfloat16_cpu else "float32"


def set_precision(precision):
    """Sets the global Keras dtype policy; returns the resolved policy name."""
    resolved = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(resolved)
    return resolved


def make_strategy(name="auto", devices=()):
    """A single-process `tf.distribute.Strategy`.

    `auto`: `MirroredStrategy` over all GPUs when there are several, else one device.
    `one_device`: the first GPU, or the CPU. `mirrored`: `MirroredStrategy` over
    `devices` (e.g. two logical CPUs in tests) or all GPUs.
    """
    if name not in STRATEGIES or name == "multi_worker":
        raise ValueError(
            f"`strategy` must be one of {STRATEGIES[:-1]} in one process. Received: strategy={name!r}"
        )
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy(list(devices) or None)
    return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")


def make_engine(config):
    """The training engine of `config.strategy` (and `collective`, `devices`)."""
    if config.strategy == "multi_worker":
        return engines.MultiWorker(*loop.make_strategy(config.collective))
    return engines.SingleProcess(make_strategy(config.strategy, config.devices))


__all__ = [
    "cpu_supports_bfloat16",
    "make_engine",
    "make_strategy",
    "resolve_precision",
    "set_precision",
]
