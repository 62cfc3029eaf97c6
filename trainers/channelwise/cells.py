"""The channel-wise report's per-cell section (worst and best cell per combination, the
networks whose hits sit on a few cells: collapsed) and location at fair label cardinality.

Location at k = 5, 7 has 25 or 49 labels against the 10 image classes, so its accuracy
and chance are not comparable with the class task's. `grouped_accuracy` scores it with
the cells grouped into at most `GROUPED_LABELS` labels: `cell_groups` cuts the k^2
cells, in raster order (row by row), into `min(labels, k^2)` contiguous runs whose sizes
differ by at most one (cell c in group `floor(c x groups / k^2)`: at k = 5 runs of 3, 2,
3, 2, ... cells; at k = 7 nine of 5 and a last of 4). A location prediction is a grouped hit
when it falls in the true cell's group; the grouped chance is that of a predictor
uniform over the k^2 cells: the sum over groups of p(true group) x p(predicted group),
p(predicted group) = its share of the cells (with equal canvases per cell: the sum of
the squared group shares). `grouped_record` turns an aggregated location record into
the same record scored this way, from its per-seed `grouped_*` fields.
"""

import statistics

import numpy as np

from trainers.framework import reports

GROUPED_LABELS = 10  # the image classes: location is judged with at most as many labels


def cell_groups(grid_size, labels=GROUPED_LABELS):
    """`(k^2,)` int array: the group of each cell, raster order (module docstring)."""
    for name, value in (("grid_size", grid_size), ("labels", labels)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")
    cells = grid_size * grid_size
    return np.arange(cells) * min(labels, cells) // cells


def grouped_chance(grid_size, examples=None, labels=GROUPED_LABELS):
    """Chance (%) of a grouped hit for a predictor uniform over the cells, the true cells
    weighted by `examples` (`(k, k)` or `(k^2,)` canvases per cell; equal when None)."""
    groups = cell_groups(grid_size, labels)
    share = np.bincount(groups) / groups.size
    weights = np.ones(groups.size) if examples is None else np.ravel(examples).astype(float)
    if weights.shape != groups.shape or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f"`examples` must be k^2 counts >= 0. Received: examples={examples!r}")
    true = np.bincount(groups, weights=weights) / weights.sum()
    return float(100.0 * true @ share)


def grouped_hits(predicted, cells, grid_size, labels=GROUPED_LABELS):
    """Booleans (any shape): each predicted cell falls in its true cell's group."""
    groups = cell_groups(grid_size, labels)
    return groups[np.asarray(predicted)] == groups[np.asarray(cells)]


def grouped_accuracy(predicted, cells, grid_size, labels=GROUPED_LABELS):
    """% of the predicted cells that fall in their true cell's group."""
    return float(100.0 * np.mean(grouped_hits(predicted, cells, grid_size, labels)))


def grouped_record(record):
    """`record` (aggregated, location) scored with grouped cells: `accuracy`, `chance`
    and each seed's `accuracy` and `per_cell_accuracy` from its `grouped_*` fields,
    `permutation_std` their root mean square over seeds; `labels` the groups. None when a
    seed lacks them (records from before they were recorded)."""
    seeds = record.get("seeds") or []
    if not seeds or any(s.get("grouped_accuracy") is None for s in seeds):
        return None
    spread = [(s.get("grouped_permutation_std") or 0.0) ** 2 for s in seeds]
    return {
        **record,
        "accuracy": statistics.fmean(s["grouped_accuracy"] for s in seeds),
        "chance": seeds[0]["grouped_chance"],
        "labels": seeds[0].get("grouped_labels"),
        "per_cell_accuracy": None,
        "permutation_std": statistics.fmean(spread) ** 0.5,
        "seeds": [
            {**s, "accuracy": s["grouped_accuracy"],
             "per_cell_accuracy": s.get("per_cell_grouped_accuracy")}
            for s in seeds
        ],
    }  # fmt: skip


def collapsed(record):
    """A sentence when a record's accuracy sits on a few cells (None otherwise): the
    best quarter of the cells holds at least 75% of the hits while the mean is < 90%."""
    grid = record.get("per_cell_accuracy")
    values = sorted((v for row in grid or [] for v in row if v is not None), reverse=True)
    if not values or record["accuracy"] >= 90 or sum(values) <= 0:
        return None
    top = max(1, -(-len(values) // 4))
    share = sum(values[:top]) / sum(values)
    if share < 0.75:
        return None
    low = sum(v < record["chance"] / 2 for v in values)
    best = ", ".join(f"{v:.0f}%" for v in values[:top])
    return (
        f"{record['combination']}: collapsed, {share:.0%} of its hits on {top} of "
        f"{len(values)} cells ({best}); {low} cells below half of chance"
    )


def cells_section(table):
    rows = []
    for r in table:
        grid = r.get("per_cell_accuracy")
        values = [v for row in grid or [] for v in row if v is not None]
        if values:
            rows.append(
                [
                    r["combination"],
                    f"{min(values):.1f}",
                    f"{max(values):.1f}",
                    f"heatmaps/{r['combination']}.png",
                ]
            )
    if not rows:
        return []
    flags = [f"- {line}." for line in (collapsed(r) for r in table) if line]
    if flags:
        flags = ["", "Collapsed networks (accuracy concentrated on a few cells):", "", *flags]
    return [
        "",
        "## Accuracy per cell",
        "",
        "Class-task canvases keep their cell, so image-class accuracy is scored per cell too"
        " (the mean over seeds when there are several; PermuteNet: over its permutations).",
        "",
        *reports.markdown_table(["combination", "worst cell", "best cell", "heat map"], rows),
        *flags,
    ]


__all__ = [
    "GROUPED_LABELS",
    "cell_groups",
    "cells_section",
    "collapsed",
    "grouped_accuracy",
    "grouped_chance",
    "grouped_hits",
    "grouped_record",
]
