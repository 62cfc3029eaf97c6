"""The trainer core: strategy, precision, callbacks and a resumable `fit`.

TensorFlow-only by design (tf.distribute, TensorBoard, SavedModel). Training always runs
inside a `tf.distribute` strategy scope; `make_strategy` is the single place that picks
one, so a multi-worker branch can be added there (note: `model.fit` under
`MultiWorkerMirroredStrategy` is broken in Keras 3.15, keras-team/keras#20585).
"""

import io
import json
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

STRATEGIES = ("auto", "one_device", "mirrored")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")


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


def make_strategy(name="auto", devices=()):
    """Returns a `tf.distribute.Strategy`.

    `auto`: `MirroredStrategy` over all GPUs when there are several, else one device.
    `one_device`: the first GPU, or the CPU. `mirrored`: `MirroredStrategy` over
    `devices` (e.g. two logical CPUs in tests) or all GPUs.
    """
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: strategy={name!r}")
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy(list(devices) or None)
    return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")


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


def figure_to_image(figure):
    """A matplotlib figure as a `[1, H, W, 4]` uint8 tensor for `tf.summary.image`."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return tf.expand_dims(tf.image.decode_png(buffer.getvalue(), channels=4), 0)


def write_hparams(log_dir, hparams):
    from tensorboard.plugins.hparams import api as hp

    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        hp.hparams(
            {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in hparams.items()}
        )
    writer.flush()


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose backups survive a kill at any instant.

    Keras writes the weights file and the epoch counter in place, so a kill during the
    write leaves a truncated HDF5 file (seen in this project's kill test). Here each
    backup is written to `incoming/`, then swapped in by renames (`state` -> `state.old`,
    `incoming` -> `state`); on start an interrupted swap is rolled forward or back, so
    the weights and the epoch counter always come from the same finished epoch.
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__(backup_dir, save_freq=save_freq, delete_checkpoint=delete_checkpoint)
        self._state = os.path.join(backup_dir, "state")
        self._old = os.path.join(backup_dir, "state.old")
        self._incoming = os.path.join(backup_dir, "incoming")
        self._weights_path = os.path.join(self._state, "latest.weights.h5")
        self._training_metadata_path = os.path.join(self._state, "training_metadata.json")

    def _recover(self):
        if not os.path.isdir(self._state) and os.path.isdir(self._old):
            os.rename(self._old, self._state)
        shutil.rmtree(self._old, ignore_errors=True)
        shutil.rmtree(self._incoming, ignore_errors=True)

    def on_train_begin(self, logs=None):
        self._recover()
        self._load_model()

    def _save_model(self):
        shutil.rmtree(self._incoming, ignore_errors=True)
        os.makedirs(self._incoming)
        self.model.save_weights(os.path.join(self._incoming, "latest.weights.h5"), overwrite=True)
        with open(os.path.join(self._incoming, "training_metadata.json"), "w") as f:
            json.dump({"epoch": self._current_epoch, "batch": self._last_batch_seen}, f)
        if os.path.isdir(self._state):
            os.rename(self._state, self._old)
        os.rename(self._incoming, self._state)
        shutil.rmtree(self._old, ignore_errors=True)


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
    training again; delete `run_dir` once the results are safe.
    """
    backup = AtomicBackupAndRestore(
        os.path.join(run_dir, "backup"), delete_checkpoint=delete_backup
    )
    return model.fit(
        train,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation,
        # Backup last: an epoch is logged before it is committed, so a kill in between
        # retrains (and re-logs) that epoch instead of losing its record.
        callbacks=[*callbacks, backup],
        verbose=verbose,
        shuffle=False,  # the tf.data pipeline shuffles
    )
