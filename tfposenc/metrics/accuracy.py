"""Top-1 and per-cell accuracy on arrays: the one home of both computations.

`top1_hits` says which predictions are right, `top1` is their share, and
`accuracy_per_cell` averages hits over the grid cell each example was placed in (a heat
map's values). Model-level loops (`tfposenc.metrics.top1_accuracy`, the analysis
evaluators, the trainers' evaluators) run the model and call these on its outputs;
`PerCellAccuracy` is the same per-cell accuracy as a streaming Keras metric. NumPy only.
"""

import numpy as np

from tfposenc.validation import check_positive_int


def top1_hits(logits, labels):
    """Whether each prediction's largest logit is at its label.

    Args:
        logits: float `[..., classes]` (logits or probabilities).
        labels: int, one per prediction: `[...]` in any shape of the same size
            (`[B]`, `[B, 1]`; `[B, H, W]` label maps for `[B, H, W, classes]` logits).

    Returns:
        bool array of the predictions' shape (`logits.shape[:-1]`).
    """
    predicted = np.argmax(np.asarray(logits), axis=-1)
    labels = np.asarray(labels)
    if labels.size != predicted.size:
        raise ValueError(
            "`labels` must hold one label per prediction. Received: "
            f"labels of shape {labels.shape} for logits of shape {np.shape(logits)}"
        )
    return predicted == labels.reshape(predicted.shape)


def top1(logits, labels):
    """Top-1 accuracy in [0, 1]: the share of `top1_hits(logits, labels)` (NaN for no
    predictions)."""
    hits = top1_hits(logits, labels)
    return float(hits.mean()) if hits.size else float("nan")


def accuracy_per_cell(cells, hits, grid_size):
    """Accuracy per grid cell: the mean hit of the examples placed in each cell.

    Args:
        cells: int `[N]`, each example's cell, `row * grid_size + col` (row-major).
        hits: bool or float `[N]` (a float is a share of hits, e.g. the mean over
            several permutations of one example).
        grid_size: int, `k` of the `k x k` grid.

    Returns:
        `(accuracy, counts)`: float `[k, k]` in [0, 1] (NaN for a cell without
        examples) and int `[k, k]`, the examples of each cell.

    Example:
    >>> accuracy, counts = accuracy_per_cell([0, 0, 3], [True, False, True], 2)
    >>> accuracy.tolist(), counts.tolist()
    ([[0.5, nan], [nan, 1.0]], [[2, 0], [0, 1]])
    """
    grid_size = check_positive_int(grid_size, "grid_size")
    cells = np.asarray(cells).reshape(-1)
    hits = np.asarray(hits, dtype="float64").reshape(-1)
    size = grid_size * grid_size
    if cells.shape != hits.shape:
        raise ValueError(
            "`cells` and `hits` must have one entry per example. "
            f"Received: {cells.size} and {hits.size}"
        )
    if cells.size and (cells.min() < 0 or cells.max() >= size):
        raise ValueError(
            f"`cells` must be in [0, {size}). Received: values in [{cells.min()}, {cells.max()}]"
        )
    counts = np.bincount(cells.astype("int64"), minlength=size)
    sums = np.bincount(cells.astype("int64"), weights=hits, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return accuracy.reshape(grid_size, grid_size), counts.reshape(grid_size, grid_size)


__all__ = ["accuracy_per_cell", "top1", "top1_hits"]
