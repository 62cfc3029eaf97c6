"""The dense read-out of the pooled-vector heads and its initialisation."""

import math

import keras

from tfposenc.vocabulary import READOUT_INITS


def readout_dense(units, fan_in, init="glorot", name="dense"):
    """A built `Dense(units)` over `fan_in` inputs, initialised as `init` says.

    `"glorot"` is Keras' default (Glorot uniform kernel, bound sqrt(6 / (fan_in +
    units)), zero bias). `"torch"` is PyTorch's `nn.Linear` default, the authors'
    read-out: kernel and bias uniform in +-1 / sqrt(fan_in) (kaiming_uniform with
    a = sqrt(5)). For 128 -> 10 the Glorot bound is 0.21; PyTorch's for the authors'
    512 -> 10 is 0.044, for 128 -> 10 0.088.

    Args:
        units: int, the number of outputs.
        fan_in: int, the number of inputs.
        init: string, one of `READOUT_INITS`. Defaults to `"glorot"`.
        name: string, the layer's name. Defaults to `"dense"`.
    """
    if init not in READOUT_INITS:
        raise ValueError(f"`readout_init` must be one of {READOUT_INITS}. Received: {init!r}")
    options = {}
    if init == "torch":
        bound = 1.0 / math.sqrt(fan_in)
        options = dict(
            kernel_initializer=keras.initializers.RandomUniform(-bound, bound),
            bias_initializer=keras.initializers.RandomUniform(-bound, bound),
        )
    dense = keras.layers.Dense(units, name=name, **options)
    dense.build((None, fan_in))
    return dense


__all__ = ["readout_dense"]
