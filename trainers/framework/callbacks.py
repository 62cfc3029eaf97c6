"""The framework's Keras callbacks and TensorBoard writers.

`StopOnNonFiniteLoss` (fails a diverged epoch before it is logged or backed up),
`JsonLinesLogger` (`metrics.jsonl`), `TensorBoardLogger` (one run per combination,
scalars against the training step), `StepTimer` (the median training step), and the
writers of hparams, final metrics, series, text and images. TensorBoard shows every
accuracy in % (`tensorboard_value`): Keras' 0-1 training accuracies are scaled there, so
they share a unit with the `test/` values. TensorFlow-only by design (TensorBoard summaries).
"""

import json
import math
import time

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; nothing of that epoch is kept."""


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


# Metrics that Keras reports as a fraction (0-1) and every report shows in %.
FRACTION_METRICS = ("accuracy",)


def tensorboard_value(key, value):
    """`value` as TensorBoard shows it: an accuracy (a key ending in `accuracy`, e.g.
    `val_sparse_categorical_accuracy`) from Keras' 0-1 to %, anything else as it is."""
    return 100.0 * value if str(key).endswith(FRACTION_METRICS) else value


def tensorboard_tag(key, validation_name="validation"):
    """Keras' `val_<metric>` as `<validation_name>_<metric>` (the data it was measured
    on, e.g. `validation_accuracy`, `test_set_accuracy`); other keys as they are."""
    return f"{validation_name}_{key[4:]}" if str(key).startswith("val_") else key


class TensorBoardLogger(keras.callbacks.Callback):
    """One TensorBoard run per combination: every scalar against the training step.

    Writes to `log_dir` itself (no `train/` and `validation/` sub-runs, so a run of many
    combinations stays under the number of runs TensorBoard selects by default):
    `train/<metric>` (the epoch's running mean) every `every` steps, so a network that
    trains one epoch still draws a line; `epoch/<metric>` and
    `epoch/<validation_name>_<metric>` (Keras' `val_<metric>`) at the end of each epoch;
    `learning_rate`. Accuracies are in % (`tensorboard_value`). Resumed runs continue
    at the right step.

    Args:
        log_dir: str, the combination's run directory.
        steps_per_epoch: int, steps of one epoch (the x axis is the global step).
        points_per_epoch: int, how many `train/` points an epoch gets. Defaults to 20.
        validation_name: str, what the per-epoch evaluation data is
            (`Experiment.validation_name`). Defaults to `"validation"`.
    """

    def __init__(self, log_dir, steps_per_epoch, points_per_epoch=20, validation_name="validation"):
        super().__init__()
        self.writer = tf.summary.create_file_writer(log_dir)
        self.steps_per_epoch = int(steps_per_epoch)
        self.every = max(1, self.steps_per_epoch // max(1, points_per_epoch))
        self.validation_name = str(validation_name)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _scalars(self, prefix, logs, step):
        with self.writer.as_default():
            for key, value in (logs or {}).items():
                value = tensorboard_value(key, float(np.asarray(value)))
                if math.isfinite(value):
                    tag = tensorboard_tag(key, self.validation_name)
                    tf.summary.scalar(f"{prefix}{tag}", value, step=step)

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % self.every == 0 or batch + 1 == self.steps_per_epoch:
            self._scalars("train/", logs, self._epoch * self.steps_per_epoch + batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        step = (epoch + 1) * self.steps_per_epoch
        self._scalars("epoch/", logs, step)
        rate = self.model.optimizer.learning_rate
        self._scalars("", {"learning_rate": keras.ops.convert_to_numpy(rate)}, step)
        self.writer.flush()


def write_scalars(log_dir, values, step, prefix=""):
    """Writes the finite float and int values of `values` as scalars at `step`."""
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if math.isfinite(value):
                    tf.summary.scalar(f"{prefix}{key}", float(value), step=int(step))
    writer.flush()


SERIES_DESCRIPTION = (
    "Not a training curve: the step axis is the measured quantity{axis}, and each point is "
    "one measured value. Set Smoothing to 0 to see the values as measured; the report "
    "run's images draw the same curve as a figure."
)


def write_series(log_dir, series, axes=None):
    """`series`: `{tag: [(step, value), ...]}` written as scalars (e.g. a sweep against
    the fraction removed in percent). Each tag carries a description saying that its
    step axis is the measured quantity (`axes`: `{tag: what the step is}`, optional)."""
    axes = dict(axes or {})
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        for tag, points in series.items():
            axis = f" ({axes[tag]})" if tag in axes else ""
            description = SERIES_DESCRIPTION.format(axis=axis)
            for step, value in points:
                if value is not None and math.isfinite(float(value)):
                    tf.summary.scalar(tag, float(value), step=int(step), description=description)
    writer.flush()


def write_text(log_dir, texts):
    """`texts`: `{tag: markdown}` written to TensorBoard's Text dashboard at step 0."""
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        for tag, text in texts.items():
            tf.summary.text(tag, tf.constant(text), step=0)
    writer.flush()


def write_images(log_dir, images):
    """`images`: `{tag: PNG path}` written as TensorBoard images."""
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        for tag, path in images.items():
            with open(path, "rb") as f:
                image = tf.image.decode_png(f.read(), channels=4)
            tf.summary.image(tag, image[None], step=0)
    writer.flush()


def hparam_value(value):
    """What TensorBoard's hparams table shows: bools and floats as they are, integers
    as their digits (a number column would show 5 as "5.0000"), the rest as text."""
    if isinstance(value, bool) or isinstance(value, float):
        return value
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) else str(value)


def write_hparams(log_dir, hparams):
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        # The trial is named after the combination (TensorBoard would show a hash).
        hp.hparams(
            {k: hparam_value(v) for k, v in hparams.items()},
            trial_id=str(hparams.get("combination")) if "combination" in hparams else None,
        )
    writer.flush()


def write_hparams_config(log_dir, hparams, metrics):
    """The experiment's hparams table in the run `log_dir` (the runner's `report` run;
    TensorBoard reads it from whichever run holds it): the hparams `hparams` (names) as
    columns and `test/<metric>` for each of `metrics` as its metrics, so the HParams page
    shows every combination's final test values (without a config it would guess the
    metrics from every scalar tag and show the first five)."""
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        hp.hparams_config(
            hparams=[hp.HParam(name) for name in dict.fromkeys(hparams)],
            metrics=[hp.Metric(f"test/{name}", display_name=name) for name in metrics],
        )
    writer.flush()


class StepTimer(keras.callbacks.Callback):
    """Wall time of training steps: the intervals between consecutive batch ends of an
    epoch (the first batch of each epoch, with its pipeline start-up, is not timed).
    `seconds()` is their median, robust to a shared machine's bursts; None before any."""

    def __init__(self):
        super().__init__()
        self.intervals = []
        self._last = None

    def on_epoch_begin(self, epoch, logs=None):
        self._last = None

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self._last is not None:
            self.intervals.append(now - self._last)
        self._last = now

    def seconds(self):
        return float(np.median(self.intervals)) if self.intervals else None


__all__ = [
    "JsonLinesLogger",
    "TensorBoardLogger",
    "NonFiniteLossError",
    "StepTimer",
    "StopOnNonFiniteLoss",
    "hparam_value",
    "tensorboard_tag",
    "tensorboard_value",
    "write_hparams",
    "write_hparams_config",
    "write_images",
    "write_scalars",
    "write_series",
    "write_text",
]
