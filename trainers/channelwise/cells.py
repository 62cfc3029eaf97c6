"""The channel-wise report's per-cell section: worst and best cell per combination, and
the networks whose hits sit on a few cells (collapsed)."""

from trainers.framework import reports


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


__all__ = ["cells_section", "collapsed"]
