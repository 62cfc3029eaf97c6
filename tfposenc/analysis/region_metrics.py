"""Metrics by region: grid accuracy on border vs inner cells; dense mIoU by image columns."""

import numpy as np

from tfposenc.analysis.regions import GRID_REGIONS, border_cells, cell_regions, column_regions
from tfposenc.validation import check_positive_int


def confusion_matrix(y_true, y_pred, num_classes, ignore_class=None):
    """`[num_classes, num_classes]` int64 counts; rows are true classes, columns predicted.

    Pixels whose true label is `ignore_class` (e.g. Cityscapes' 255) are left out;
    any other label outside `[0, num_classes)` raises.
    """
    y_true = np.asarray(y_true).reshape(-1).astype("int64")
    y_pred = np.asarray(y_pred).reshape(-1).astype("int64")
    if y_true.shape != y_pred.shape:
        raise ValueError(
            "`y_true` and `y_pred` must have as many elements. "
            f"Received: {y_true.size} and {y_pred.size}"
        )
    if ignore_class is not None:
        keep = y_true != ignore_class
        y_true, y_pred = y_true[keep], y_pred[keep]
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"`{name}` must hold classes in [0, {num_classes}). "
                f"Received: values in [{values.min()}, {values.max()}]"
            )
    counts = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def mean_iou(confusion):
    """Mean over classes of `TP / (TP + FP + FN)`, over the classes that occur (true or
    predicted); NaN if none does."""
    confusion = np.asarray(confusion, dtype="float64")
    true_positive = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - true_positive
    present = union > 0
    if not present.any():
        return float("nan")
    return float(np.mean(true_positive[present] / union[present]))


class RegionConfusion:
    """Accumulates one confusion matrix per region of dense maps: the column regions
    (`COLUMN_REGIONS`) and, with `grid_size`, the cell ring (`CELL_REGIONS`).

    Args:
        num_classes: int, the number of classes.
        ignore_class: int or None, a true label to leave out. Defaults to `None`.
        grid_size: int or None, `k` of a `k x k` canvas of cells: adds `border` (the
            pixels of the outer ring of cells) and `inner`. Defaults to `None`.
    """

    def __init__(self, num_classes, ignore_class=None, grid_size=None):
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.ignore_class = ignore_class
        self.grid_size = None if grid_size is None else check_positive_int(grid_size, "grid_size")
        self.confusions = {}

    def update(self, y_true, y_pred):
        """`y_true`, `y_pred`: `[B, H, W]` (or `[H, W]`) class maps."""
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        if y_true.shape != y_pred.shape or y_true.ndim < 2:
            raise ValueError(
                "`y_true` and `y_pred` must be class maps of one shape [..., H, W]. "
                f"Received: {y_true.shape} and {y_pred.shape}"
            )
        for region, columns in column_regions(y_true.shape[-1]).items():
            confusion = confusion_matrix(
                y_true[..., columns], y_pred[..., columns], self.num_classes, self.ignore_class
            )
            self.confusions[region] = self.confusions.get(region, 0) + confusion
        if self.grid_size is not None:
            for region, mask in cell_regions(*y_true.shape[-2:], self.grid_size).items():
                confusion = confusion_matrix(
                    y_true[..., mask], y_pred[..., mask], self.num_classes, self.ignore_class
                )
                self.confusions[region] = self.confusions.get(region, 0) + confusion

    def result(self):
        """`{region: mIoU}` for `overall`, `left`, `right`, `centre` (and `border`,
        `inner` with `grid_size`)."""
        return {region: mean_iou(confusion) for region, confusion in self.confusions.items()}


def region_mean_iou(y_true, y_pred, num_classes, ignore_class=None, grid_size=None):
    """mIoU of `[B, H, W]` class maps overall and on the left / right half and the centre
    (middle half of the width); with `grid_size`, on the border ring of cells and the
    inner cells; as a dict."""
    regions = RegionConfusion(num_classes, ignore_class, grid_size)
    regions.update(y_true, y_pred)
    return regions.result()


def grid_region_accuracy(cells, correct, grid_size):
    """Accuracy overall, on the border ring of cells and on the inner cells.

    Args:
        cells: int `[N]`, the cell (row-major) each example's object was placed in.
        correct: bool `[N]`, whether each prediction was right.
        grid_size: int, `k`.

    Returns:
        `{"overall", "border", "inner"}` -> accuracy in [0, 1]; NaN for a region without
        examples (a grid with k <= 2 has no inner cells).
    """
    cells = np.asarray(cells).reshape(-1).astype("int64")
    correct = np.asarray(correct).reshape(-1).astype(bool)
    border = border_cells(grid_size)
    if cells.shape != correct.shape:
        raise ValueError(
            "`cells` and `correct` must have one entry per example. "
            f"Received: {cells.size} and {correct.size}"
        )
    if cells.size and (cells.min() < 0 or cells.max() >= border.size):
        raise ValueError(
            f"`cells` must be in [0, {border.size}). "
            f"Received: values in [{cells.min()}, {cells.max()}]"
        )
    on_border = border[cells]
    masks = {"overall": np.ones_like(on_border), "border": on_border, "inner": ~on_border}
    return {
        region: float(correct[masks[region]].mean()) if masks[region].any() else float("nan")
        for region in GRID_REGIONS
    }
