"""TensorBoard images for grid experiments (sample canvases, a per-cell heat map) and the
learning-curve point of every epoch (`PermutedValidation`)."""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from trainers.channelwise.curves import flatness
from trainers.channelwise.evaluation import validation_accuracy
from trainers.framework import evaluators, reports


class GridSummaries(keras.callbacks.Callback):
    """Writes `samples` (pixel canvases, 0..255) once and, when `heatmap`, the per-cell
    location accuracy on `validation` after every epoch, to `log_dir/images`.

    Args:
        log_dir: str, the combination's TensorBoard directory.
        samples: `tf.data.Dataset` whose first batch holds the canvases to show.
        validation: `tf.data.Dataset` of `(canvases, cell labels)` batches.
        grid_size: int, cells per side.
        heatmap: bool, write the per-cell heat map (location targets only).
    """

    def __init__(self, log_dir, samples, validation, grid_size, heatmap):
        super().__init__()
        self.writer = tf.summary.create_file_writer(log_dir)  # the combination's one run
        self.samples = samples
        self.validation = validation
        self.grid_size = grid_size
        self.heatmap = heatmap

    def on_train_begin(self, logs=None):
        pixels = next(iter(self.samples))[0].numpy()
        with self.writer.as_default():
            tf.summary.image(
                "sample_canvases", np.clip(pixels / 255.0, 0, 1), step=0, max_outputs=len(pixels)
            )

    def on_epoch_end(self, epoch, logs=None):
        if not self.heatmap:
            return
        values = dict(evaluators.grid_location(self.model, self.validation, self.grid_size))
        png = reports.figure_png(
            reports.heatmap_figure(values["per_cell_accuracy"], f"epoch {epoch + 1}")
        )
        with self.writer.as_default():
            image = tf.expand_dims(tf.image.decode_png(png, channels=4), 0)
            tf.summary.image("per_cell_location_accuracy", image, step=epoch)
        self.writer.flush()


class PermutedValidation(keras.callbacks.Callback):
    """After every epoch, the accuracy on `validation` (held-out training images,
    disjoint from the test images, one fixed placement each) scored as the final test is, PermuteNet under `permutations`
    distinct permutations: adds `val_permuted_accuracy` and `val_permutation_std` to the
    epoch's logs (so `metrics.jsonl` holds them) and writes them to `log_dir` as
    `epoch/val_permuted_accuracy` and `epoch/val_permutation_std`.

    Args:
        log_dir: str, the combination's TensorBoard directory.
        validation: `tf.data.Dataset` of `(canvases, labels)` batches.
        network: str, the combination's network.
        permutations: int, permutations per pass (PermuteNet only).
        seed: int, seeds the permutations (the same ones every epoch).
    """

    def __init__(self, log_dir, validation, network, permutations, seed):
        super().__init__()
        self.writer = tf.summary.create_file_writer(log_dir)
        self.validation = validation
        self.network = network
        self.permutations = permutations
        self.seed = seed

    def on_epoch_end(self, epoch, logs=None):
        accuracy, spread = validation_accuracy(
            self.model, self.validation, self.network, self.permutations, self.seed
        )
        if logs is not None:
            logs["val_permuted_accuracy"] = accuracy
            logs["val_permutation_std"] = spread
        step = (epoch + 1) * int(self.params.get("steps") or 0)
        with self.writer.as_default():
            tf.summary.scalar("epoch/val_permuted_accuracy", accuracy, step=step)
            tf.summary.scalar("epoch/val_permutation_std", spread, step=step)
        self.writer.flush()


class StopWhenFlat(keras.callbacks.Callback):
    """Stops training once the validation curve is flat (`curves.flatness` on
    `val_permuted_accuracy`, which `PermutedValidation`, placed before it, adds to the
    epoch's logs): the slope of accuracy against log2(step) over the last 40% of the
    steps lies within +-`tolerance` points per doubling. The epoch cap stays the
    budget's. A resumed run judges its whole history: at its first epoch it reads the
    earlier epochs' values back from `history` (the run's `metrics.jsonl`, the records
    of `combination`; an epoch logged twice counts once, its last try), so a run split
    by a resume stops where the unsplit run would.

    Args:
        tolerance: float, points per doubling of the steps.
        history: str or None, the run's `metrics.jsonl`; None: no earlier epochs.
        combination: str or None, the combination name its records carry.
    """

    def __init__(self, tolerance, history=None, combination=None):
        super().__init__()
        self.tolerance = tolerance
        self.history = history
        self.combination = combination
        self.points = []
        self._read = False

    def earlier(self, epochs):
        """`[(step, value)]` of the first `epochs` epochs logged in `history`."""
        if not self.history or not os.path.exists(self.history):
            return []
        last = {}
        with open(self.history) as f:
            for line in f:
                record = json.loads(line)
                if (record.get("combination") == self.combination
                        and "val_permuted_accuracy" in record
                        and record.get("epoch", 0) <= epochs):  # fmt: skip
                    last[record["epoch"]] = record
        return [(epoch * int(r["steps_per_epoch"]), float(r["val_permuted_accuracy"]))
                for epoch, r in sorted(last.items())]  # fmt: skip

    def on_epoch_end(self, epoch, logs=None):
        if not self._read:
            self._read = True
            self.points = self.earlier(epoch) + self.points
        if not logs or "val_permuted_accuracy" not in logs:
            return
        self.points.append(((epoch + 1) * int(self.params.get("steps") or 1),
                            float(logs["val_permuted_accuracy"])))  # fmt: skip
        rule = flatness(*zip(*self.points, strict=True), tolerance=self.tolerance)
        if rule["flat"]:
            self.model.stop_training = True


__all__ = ["GridSummaries", "PermutedValidation", "StopWhenFlat"]
