"""The trainer core: strategy, precision, callbacks, atomic files and a resumable `fit`.

TensorFlow-only by design (tf.distribute, TensorBoard). Training always runs inside a
`tf.distribute` strategy scope; `make_strategy` is the single place that picks one.
`model.fit` under `MultiWorkerMirroredStrategy` is broken in Keras 3.15
(keras-team/keras#20585), so that strategy trains with `trainers.distributed`'s own loop,
which drives the same callbacks and backups as `fit_resumable`.
"""

import json
import math
import os
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from trainers.core_backup import AtomicBackupAndRestore, BrokenBackupError  # noqa: F401
from trainers.vocabulary import PRECISIONS, STRATEGIES


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; nothing of that epoch is kept."""


def cpu_supports_bfloat16():
    """True where the CPU has native bf16 instructions (AVX512-BF16 or AMX-BF16)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision):
    if precision not in PRECISIONS:
        raise ValueError(
            f"`precision` must be one of {PRECISIONS}. Received: precision={precision!r}"
        )
    if precision != "auto":
        return precision
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_supports_bfloat16() else "float32"


def set_precision(precision):
    """Sets the global Keras dtype policy; returns the resolved policy name."""
    resolved = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(resolved)
    return resolved


def make_strategy(name="auto", devices=(), collective="auto"):
    """Returns a `tf.distribute.Strategy`.

    `auto`: `MirroredStrategy` over all GPUs when there are several, else one device.
    `one_device`: the first GPU, or the CPU. `mirrored`: `MirroredStrategy` over
    `devices` (e.g. two logical CPUs in tests) or all GPUs. `multi_worker`:
    `MultiWorkerMirroredStrategy` from `TF_CONFIG` with the `collective` all-reduce
    (see `trainers.distributed.make_strategy`, which also returns this task's place).
    """
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: strategy={name!r}")
    if name == "multi_worker":
        from trainers import distributed

        return distributed.make_strategy(collective)[0]
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy(list(devices) or None)
    return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")


def check_writable(path, name="out"):
    """Raises ValueError unless a directory can be created (or written) at `path`.

    Probes with a temporary file in `path` or its nearest existing parent, which works
    for root too (where permission bits say nothing), and creates nothing that stays.
    """
    path = os.path.abspath(path)
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    reason = None
    if not os.path.isdir(probe):
        reason = f"{probe} is a file, not a directory"
    else:
        try:
            with tempfile.TemporaryFile(dir=probe):
                pass
        except OSError as error:
            reason = f"{probe} is not writable ({error.strerror or error})"
    if reason:
        raise ValueError(
            f"`{name}` must be a writable directory: {reason}. Received: {name}={path!r}"
        )


def write_json(path, value):
    """Writes `value` as JSON to `path` atomically (a reader sees the old or the new file)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, indent=2)
    os.replace(path + ".tmp", path)


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises `NonFiniteLossError` at the end of an epoch whose loss is NaN or infinite.

    Unlike `keras.callbacks.TerminateOnNaN`, which ends `fit` normally (so the caller
    would evaluate and export the broken model), this fails. Placed before the backup
    callback, the diverged epoch is never committed.
    """

    def __init__(self, name=""):
        super().__init__()
        self.name = name

    def on_epoch_end(self, epoch, logs=None):
        for key in ("loss", "val_loss"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(float(np.asarray(value))):
                raise NonFiniteLossError(
                    f"{self.name}: the training diverged ({key} {float(np.asarray(value))} in "
                    f"epoch {epoch + 1}); no result is reported. Lower --learning-rate and "
                    "use a new --out."
                )


class JsonLinesLogger(keras.callbacks.Callback):
    """Appends one JSON object per epoch (`epoch`, every log value, `extra`) to a file."""

    def __init__(self, path, extra=None):
        super().__init__()
        self.path = path
        self.extra = dict(extra or {})
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        record = {"epoch": epoch + 1, **self.extra}
        for key, value in (logs or {}).items():
            record[key] = float(np.asarray(value))
        record["epoch_seconds"] = round(time.time() - (self._start or time.time()), 3)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()


class LearningRateLogger(keras.callbacks.Callback):
    """Writes the optimizer's learning rate to TensorBoard each epoch."""

    def __init__(self, log_dir):
        super().__init__()
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "train"))

    def on_epoch_end(self, epoch, logs=None):
        lr = float(np.asarray(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
        with self.writer.as_default():
            tf.summary.scalar("learning_rate", lr, step=epoch)
        self.writer.flush()


def write_hparams(log_dir, hparams):
    from tensorboard.plugins.hparams import api as hp

    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        hp.hparams(
            {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in hparams.items()}
        )
    writer.flush()


def fit_resumable(
    model,
    train,
    epochs,
    run_dir,
    validation=None,
    steps_per_epoch=None,
    callbacks=(),
    verbose="auto",
    delete_backup=False,
):
    """`model.fit` that survives being killed: `AtomicBackupAndRestore` in `run_dir/backup`.

    Started again with the same `run_dir`, it resumes after the last finished epoch and
    trains exactly `epochs` epochs in all. The final backup is kept by default, so a
    process killed after training (while evaluating or exporting) restarts without
    training again; delete `run_dir` once the results are safe. A NaN or infinite loss
    raises `NonFiniteLossError`; an unusable backup raises `BrokenBackupError`.
    """
    backup = AtomicBackupAndRestore(
        os.path.join(run_dir, "backup"), delete_checkpoint=delete_backup
    )
    return model.fit(
        train,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation,
        # The divergence check first (a diverged epoch is neither logged nor committed);
        # the backup last: an epoch is logged before it is committed, so a kill in
        # between retrains (and re-logs) that epoch instead of losing its record.
        callbacks=[StopOnNonFiniteLoss(os.path.basename(run_dir)), *callbacks, backup],
        verbose=verbose,
        shuffle=False,  # the tf.data pipeline shuffles
    )
