"""PermuteNet and its order-free relatives: the pooled channels lose their order
before the read-out (PermuteNet shuffles them, SortNet sorts them, SumNet adds them)."""

import keras
from keras import ops

from tfposenc.layers import ChannelShuffle
from tfposenc.models.readout import readout_dense
from tfposenc.models.task import Task

_READOUT_ARG = """readout_init: string, the dense layer's initialisation, `"glorot"`
            (Keras') or `"torch"` (PyTorch's, the authors'; see `readout_dense`).
            Defaults to `"glorot"`."""


class _ReadoutTask(Task):
    """A task whose head is one dense layer over `fan_in` values made from the pooled
    vector; stores `readout_init`."""

    def __init__(self, backbone, num_outputs, readout_init="glorot", fan_in=None, **kwargs):
        super().__init__(backbone, num_outputs, **kwargs)
        self.readout_init = readout_init
        fan_in = self.backbone.output_channels if fan_in is None else fan_in
        self.dense = readout_dense(num_outputs, fan_in, readout_init)
        self.built = True

    def get_config(self):
        return super().get_config() | {"readout_init": self.readout_init}


@keras.saving.register_keras_serializable(package="tfposenc")
class PermuteNet(_ReadoutTask):
    """Backbone, global average pooling, `ChannelShuffle`, dense.

    A fresh permutation of the pooled channels is drawn on every call (shared by the
    batch), in training and at test time alike, so the read-out cannot rely on which
    channel fired (Islam et al., 2021, Fig. 1 right). `Classifier` is the same network
    without the shuffle: the exact control.

    What the read-out can use: behind a uniform random permutation P of the pooled
    vector z, the expected logits are E[W P z] = (mean of W over its inputs) * sum(z)
    + b (`expected_logits`), the logits of a `SumNet`; the rest is zero-mean noise from
    the spread of W over its inputs.

    Args:
        backbone: a `tfposenc.models.Backbone`.
        num_outputs: int, the number of classes.
        seed: int or None, seeds the shuffle. Defaults to `None`.
        {readout}
        **kwargs: `mean`, `std` (see `Task`), `name`, ...
    """

    def __init__(self, backbone, num_outputs, seed=None, readout_init="glorot", **kwargs):
        super().__init__(backbone, num_outputs, readout_init=readout_init, **kwargs)
        self.seed = seed
        self.shuffle = ChannelShuffle(seed=seed, name="shuffle")

    def head(self, features, pooled, training=None):
        return self.dense(self.shuffle(pooled))

    def expected_logits(self, pooled):
        """The logits averaged over every permutation of `pooled` (`(batch, channels)`):
        `sum(pooled) * mean_c(kernel[c]) + bias`."""
        return expected_logits(pooled, self.dense.kernel, self.dense.bias)

    def get_config(self):
        return super().get_config() | {"seed": self.seed}


@keras.saving.register_keras_serializable(package="tfposenc")
class SortNet(_ReadoutTask):
    """Backbone, global average pooling, sort the channels by value, dense.

    Beyond the paper: sorting keeps the whole multiset of pooled values but no channel
    identity, deterministically. If position survives here but not in `PermuteNet`, it
    lives in the distribution of values; if it is lost in both, in the channel order.
    The output is invariant to any permutation of the pooled channels.

    Args:
        backbone: a `tfposenc.models.Backbone`.
        num_outputs: int, the number of classes.
        {readout}
        **kwargs: `mean`, `std` (see `Task`), `name`, ...
    """

    def head(self, features, pooled, training=None):
        return self.dense(ops.sort(pooled, axis=-1))


@keras.saving.register_keras_serializable(package="tfposenc")
class SumNet(_ReadoutTask):
    """Backbone, global average pooling, the sum of the channels, dense: the noise-free
    PermuteNet.

    The only linear function of the pooled vector z that survives every permutation is
    its sum, and PermuteNet's expected logits are `sum(z) * mean_c(W[c]) + b`
    (`PermuteNet.expected_logits`); SumNet is that read-out trained directly (a dense
    layer from one scalar). Unlike `SortNet`, it sees no order statistic. Its output
    depends on the input only through `sum(z)`.

    It starts where PermuteNet's expected read-out starts: a read-out matrix over all
    `C` channels is drawn as PermuteNet's is (`readout_init`), and SumNet's kernel is
    its row means, its bias that matrix's bias, so the two networks differ by the
    permutation noise only (a dense layer drawn for one input would start with logits
    ~sqrt(C) times larger: 59 against 0.54 at width 16). Drawn before the rest of the
    model, the matrix is the one PermuteNet draws under the same global seed.

    Args:
        backbone: a `tfposenc.models.Backbone`.
        num_outputs: int, the number of classes.
        {readout}
        **kwargs: `mean`, `std` (see `Task`), `name`, ...
    """

    def __init__(self, backbone, num_outputs, readout_init="glorot", **kwargs):
        kwargs.pop("fan_in", None)
        channels = getattr(backbone, "output_channels", None)
        template = None
        if channels is not None and isinstance(num_outputs, int) and num_outputs > 0:
            template = readout_dense(num_outputs, channels, readout_init, name="template")
        super().__init__(backbone, num_outputs, readout_init=readout_init, fan_in=1, **kwargs)
        if template is None:  # a plain Keras backbone: its channels are known only now
            template = readout_dense(
                num_outputs, self.backbone.output_channels, readout_init, name="template"
            )
        kernel, bias = (ops.convert_to_numpy(w) for w in (template.kernel, template.bias))
        self.dense.set_weights([kernel.mean(axis=0, keepdims=True), bias])

    def head(self, features, pooled, training=None):
        return self.dense(ops.sum(pooled, axis=-1, keepdims=True))


for _cls in (PermuteNet, SortNet, SumNet):
    _cls.__doc__ = _cls.__doc__.replace("{readout}", _READOUT_ARG)


def permuted_logits(pooled, kernel, bias, permutation):
    """PermuteNet's read-out on pooled features under one pinned permutation.

    `ChannelShuffle` sets `out[c] = in[permutation[c]]`, then the dense layer applies:
    `pooled[:, permutation] @ kernel + bias`, what `PermuteNet` computes when its shuffle
    draws `permutation`.

    Args:
        pooled: `(batch, channels)` pooled backbone features.
        kernel: `(channels, outputs)` dense kernel. bias: `(outputs,)`.
        permutation: `(channels,)` int, a permutation of `range(channels)`.

    Returns:
        `(batch, outputs)` logits (a backend tensor; `keras.ops.convert_to_numpy` it).
    """
    pooled = ops.convert_to_tensor(pooled)
    kernel = ops.cast(ops.convert_to_tensor(kernel), pooled.dtype)
    shuffled = ops.take(pooled, ops.convert_to_tensor(permutation, "int32"), axis=-1)
    return ops.matmul(shuffled, kernel) + ops.cast(bias, pooled.dtype)


def expected_logits(pooled, kernel, bias):
    """PermuteNet's read-out averaged over every permutation of the pooled channels:
    `sum(pooled) * mean_c(kernel[c]) + bias` (a `SumNet` with the row-mean weights).

    Args:
        pooled: `(batch, channels)` pooled backbone features.
        kernel: `(channels, outputs)` dense kernel. bias: `(outputs,)`.

    Returns:
        `(batch, outputs)` logits (a backend tensor).
    """
    kernel = ops.convert_to_tensor(kernel)
    total = ops.sum(ops.cast(pooled, kernel.dtype), axis=-1, keepdims=True)
    return total * ops.mean(kernel, axis=0) + ops.cast(bias, kernel.dtype)
