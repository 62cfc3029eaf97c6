"""Evaluators: one pass over a test set, yielding `(name, value)` pairs.

They know nothing about files, logging or experiments (big_vision's rule): the runner
stores what they yield in the combination's result, a report renders it. Predictions run
batch by batch through one traced function (no Python work per image), with the input
pipeline prefetching, and a `keras.utils.Progbar` when `verbose`.
"""

import keras
import numpy as np
import tensorflow as tf

from tfposenc.metrics import PerCellAccuracy, top1_hits
from tfposenc.metrics.traced import traced


def predictions(model, dataset, verbose=0, title=None):
    """Yields `(logits, labels)` numpy batches of `dataset` (`(inputs, labels)` batches)."""
    steps = int(dataset.cardinality())
    bar = None
    if verbose:
        if title:
            print(title, flush=True)
        if verbose == 1:  # a progress bar on a terminal; nothing per batch in a log file
            bar = keras.utils.Progbar(steps if steps > 0 else None, verbose=1)
    for step, (inputs, labels) in enumerate(dataset.prefetch(tf.data.AUTOTUNE)):
        yield np.asarray(traced(model)(inputs)), labels.numpy()
        if bar is not None:
            bar.update(step + 1)


def classification(model, dataset, verbose=0, title=None):
    """Yields `accuracy` (top-1, %) and `examples` (how many were evaluated)."""
    correct = total = 0
    for logits, labels in predictions(model, dataset, verbose, title):
        correct += int(np.sum(top1_hits(logits, labels)))
        total += len(labels)
    yield "accuracy", 100.0 * correct / max(total, 1)
    yield "examples", total


def grid_location(model, dataset, grid_size, verbose=0, title=None):
    """Location on grid canvases: `accuracy` (%), `examples` and `per_cell_accuracy`
    (a `grid_size x grid_size` list of % per true cell, None where a cell never
    occurred), all from the same predictions."""
    metric = PerCellAccuracy(grid_size)
    correct = total = 0
    for logits, labels in predictions(model, dataset, verbose, title):
        correct += int(np.sum(top1_hits(logits, labels)))
        total += len(labels)
        metric.update_state(labels, logits)
    per_cell = keras.ops.convert_to_numpy(metric.result())
    yield "accuracy", 100.0 * correct / max(total, 1)
    yield "examples", total
    yield (
        "per_cell_accuracy",
        [[None if np.isnan(v) else round(100.0 * float(v), 2) for v in row] for row in per_cell],
    )


__all__ = ["classification", "grid_location", "predictions"]
