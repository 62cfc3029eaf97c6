"""Evaluators for `ablation_sweep`: `evaluate(model, dataset)` -> float or `{region: float}`.

Each carries a `metric` attribute, the name `ablation_sweep` writes into its records.
Models run in inference mode (`model(images, training=False)`), channels_last.
"""

import numpy as np

from tfposenc.analysis._batches import iterate_batches, logits
from tfposenc.analysis.region_metrics import RegionConfusion, grid_region_accuracy
from tfposenc.metrics.accuracy import top1_hits
from tfposenc.validation import check_positive_int


def accuracy(model, dataset):
    """Top-1 accuracy of `argmax(model(images))` against the labels, in [0, 1].

    Works for classification (`[B]` labels) and dense prediction (`[B, H, W]` label
    maps: pixel accuracy). `dataset` yields `(images, labels)`.
    """
    correct, count = 0, 0
    for images, labels, _ in iterate_batches(dataset):
        if labels is None:
            raise ValueError("`dataset` must yield (images, labels) to measure accuracy.")
        hits = top1_hits(logits(model, images), labels)
        correct += int(hits.sum())
        count += hits.size
    if count == 0:
        raise ValueError("`dataset` must hold at least one example. Received: an empty dataset")
    return correct / count


accuracy.metric = "accuracy"


class GridRegionAccuracy:
    """Accuracy overall and on the border-ring vs inner cells of a `k x k` grid task.

    The cell of each example is its label (location task, `dataset` yields `(canvases,
    cells)`) or, for other targets, a third element: `(canvases, labels, cells)` (e.g.
    with `make_grid(placement="all_cells")` the cell of example `i` is `i % k**2`).

    Args:
        grid_size: int, `k`.

    Call returns:
        `{"overall", "border", "inner"}` -> accuracy in [0, 1].
    """

    metric = "accuracy"

    def __init__(self, grid_size):
        self.grid_size = check_positive_int(grid_size, "grid_size")

    def __call__(self, model, dataset):
        cells, correct = [], []
        for images, labels, extra in iterate_batches(dataset):
            if labels is None:
                raise ValueError("`dataset` must yield (images, labels[, cells]).")
            correct.append(top1_hits(logits(model, images), labels))
            cells.append(labels if extra is None else extra)
        if not cells:
            raise ValueError("`dataset` must hold at least one example. Received: an empty dataset")
        return grid_region_accuracy(np.concatenate(cells), np.concatenate(correct), self.grid_size)


class SegmentationRegionIoU:
    """mIoU overall, on the left / right half and the centre (middle half of the width)
    of dense predictions (the authors' regions) and, with `grid_size`, on the border ring
    of cells and the inner cells; `dataset` yields `(images, label maps [B, H, W])`.

    Args:
        num_classes: int, the number of classes.
        ignore_class: int or None, a true label to leave out. Defaults to `None`.
        grid_size: int or None, `k` of a canvas of `k x k` cells. Defaults to `None`.

    Call returns:
        `{"overall", "left", "right", "centre"[, "border", "inner"]}` -> mIoU in [0, 1].
    """

    metric = "miou"

    def __init__(self, num_classes, ignore_class=None, grid_size=None):
        RegionConfusion(num_classes, ignore_class, grid_size)  # validates the arguments
        self.num_classes = num_classes
        self.ignore_class = ignore_class
        self.grid_size = grid_size

    def __call__(self, model, dataset):
        regions = RegionConfusion(self.num_classes, self.ignore_class, self.grid_size)
        for images, labels, _ in iterate_batches(dataset):
            if labels is None:
                raise ValueError("`dataset` must yield (images, label maps).")
            regions.update(labels, logits(model, images).argmax(axis=-1))
        if not regions.confusions:
            raise ValueError("`dataset` must hold at least one example. Received: an empty dataset")
        return regions.result()
