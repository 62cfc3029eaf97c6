"""Keras' BatchNormalization with TensorFlow's fused kernel as its TensorFlow fast path.

This file is the one sanctioned exception to the keras.ops-only rule for layers: all
TensorFlow-specific code of the fast path lives here, and every other backend (or a
disabled fast path) runs the inherited `keras.layers.BatchNormalization.call`.
"""

import keras

from tfposenc.validation import env_switch

FUSED_ENV_VAR = "TFPOSENC_FUSED_BN"
_FUSED_DTYPES = ("float16", "bfloat16", "float32")


def fused_enabled_by_env():
    """False when the environment variable `TFPOSENC_FUSED_BN` is `"0"`, else True."""
    return env_switch(FUSED_ENV_VAR)


@keras.saving.register_keras_serializable(package="tfposenc")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` that calls TensorFlow's fused batch norm.

    A drop-in replacement: the same arguments, the same four weights (`gamma`, `beta`,
    `moving_mean`, `moving_variance`, created by the inherited `build` in the same
    order and with the same names), the same class name in snake case (`.keras` and
    `.weights.h5` files address layers by it), so files saved with Keras' layer load
    into this one. The moving statistics follow Keras' rule exactly:
    `moving = moving * momentum + batch * (1 - momentum)` with the biased batch
    variance (the fused kernel reports the unbiased one; it is rescaled by
    `(n - 1) / n`).

    With the TensorFlow backend, a 4D channels-last input of dtype float32, bfloat16 or
    float16 and float32 variables, `call` runs one `FusedBatchNormV3` op (forward) and
    its fused gradient (backward): 3-4x cheaper than Keras' composite of moments,
    casts and element-wise ops, in float32 and in bfloat16. Under the
    `"mixed_bfloat16"` policy the bfloat16 input is normalised without a cast to
    float32 (the kernel accumulates in float32) and the output stays bfloat16. Every
    other case (another backend, another rank or axis, `renorm`, `synchronized`, a
    mask, `fused=False`, or the environment variable `TFPOSENC_FUSED_BN=0` with
    `fused=None`) runs Keras' own computation.

    Under `tf.distribute.MirroredStrategy` each replica normalises with the statistics
    of its own slice of the batch and updates the moving statistics from them, exactly
    as Keras' default `synchronized=False` layer does (the variables are mirrored with
    Keras' default aggregation, so what is kept is the same as with Keras' layer).
    Statistics synchronised over replicas need `synchronized=True`, which takes Keras'
    path.

    Args:
        fused: bool or None. `None` uses the fused kernel wherever it applies unless
            the environment variable `TFPOSENC_FUSED_BN` is `"0"`; `True` requires the
            TensorFlow backend; `False` always runs Keras' computation.
            Defaults to `None`.
        **kwargs: every argument of `keras.layers.BatchNormalization` (`axis`,
            `momentum`, `epsilon`, `center`, `scale`, initializers, ...), with Keras'
            defaults.

    Call arguments:
        inputs: Input tensor (of any rank).
        training: Python boolean, whether to normalise with the batch statistics and
            update the moving ones (as in Keras' layer; a non-trainable layer always
            runs in inference mode).
        mask: optional mask; a masked call runs Keras' computation.

    Input shape:
        Arbitrary.

    Output shape:
        Same shape as input.

    Example:

    >>> bn = BatchNormalization(momentum=0.9, epsilon=1e-5)
    >>> bn(np.ones((2, 4, 4, 3)), training=True).shape
    (2, 4, 4, 3)
    >>> [w.name for w in bn.weights]
    ['gamma', 'beta', 'moving_mean', 'moving_variance']

    Reference:
        - [Ioffe and Szegedy, 2015](https://arxiv.org/abs/1502.03167)
    """

    def __init__(self, fused=None, **kwargs):
        if fused not in (None, True, False):
            raise ValueError(f"`fused` must be None, True or False. Received: fused={fused!r}")
        if fused and keras.backend.backend() != "tensorflow":
            raise ValueError(
                "`fused=True` needs the TensorFlow backend. Received: fused=True with "
                f"backend {keras.backend.backend()!r}"
            )
        super().__init__(**kwargs)
        self.fused = fused

    def _fused_applies(self, inputs, mask):
        if self.fused is False or keras.backend.backend() != "tensorflow":
            return False
        if self.fused is None and not fused_enabled_by_env():
            return False
        rank = len(inputs.shape)
        return (
            mask is None
            and not self.renorm
            and not self.synchronized
            and rank == 4
            and self.axis in (-1, rank - 1)
            and keras.backend.standardize_dtype(inputs.dtype) in _FUSED_DTYPES
            and keras.backend.standardize_dtype(self.moving_mean.dtype) == "float32"
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fused_applies(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = self.moving_mean.shape[0]
        scale = self.gamma if self.scale else tf.ones((channels,), "float32")
        offset = self.beta if self.center else tf.zeros((channels,), "float32")
        # Read the variables as tensors (the op takes tensors, not resource handles).
        scale, offset = tf.convert_to_tensor(scale), tf.convert_to_tensor(offset)
        if training and self.trainable:
            empty = tf.constant([], "float32")
            outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=inputs,
                scale=scale,
                offset=offset,
                mean=empty,
                variance=empty,
                epsilon=self.epsilon,
                exponential_avg_factor=1.0,
                data_format="NHWC",
                is_training=True,
            )
            # The kernel's batch variance is unbiased; Keras tracks the biased one.
            count = tf.cast(tf.size(inputs, out_type=tf.int64) // channels, "float32")
            variance = tf.where(count > 1.0, variance * ((count - 1.0) / count), 0.0)
            mean, variance = tf.stop_gradient(mean), tf.stop_gradient(variance)
            momentum = self.momentum
            self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
            self.moving_variance.assign(
                self.moving_variance * momentum + variance * (1.0 - momentum)
            )
        else:
            outputs, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=inputs,
                scale=scale,
                offset=offset,
                mean=tf.convert_to_tensor(self.moving_mean),
                variance=tf.convert_to_tensor(self.moving_variance),
                epsilon=self.epsilon,
                exponential_avg_factor=1.0,
                data_format="NHWC",
                is_training=False,
            )
        return keras.ops.cast(outputs, self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config["fused"] = self.fused
        return config
