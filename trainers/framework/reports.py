"""Reports: `results.md` tables and figures, rendered from result dicts.

Figures use matplotlib's object API (`matplotlib.figure.Figure` drawn by
`FigureCanvasAgg`), so rendering never touches pyplot's global state nor switches the
backend of a user's session. Nothing here imports TensorFlow.
"""

import io
import math
import os
import statistics


def markdown_table(header, rows):
    """Markdown lines of a table; cells are formatted with `str`."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows]


def mean_std(values):
    """`(mean, sample standard deviation)` of `values`; the deviation is 0.0 for one."""
    values = [float(v) for v in values]
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def format_mean_std(values, digits=1):
    """`"m"` for one value, `"m ± s"` (sample standard deviation) for several."""
    mean, std = mean_std(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def timing_table(results):
    """The framework's section of `results.md`: what each combination cost."""
    rows = [
        (
            r["combination"],
            r["epochs_trained"],
            r["train_seconds"],
            r["test_seconds"],
            r.get("examples", ""),
        )
        for r in results
    ]
    header = ("combination", "epochs", "train s", "test s", "test examples")
    return ["", "## Cost", "", *markdown_table(header, rows)]


def new_figure(size):
    """A `Figure` with an Agg canvas attached (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure, path, dpi=100):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    figure.savefig(path, dpi=dpi)


def figure_png(figure, dpi=80):
    """The figure as PNG bytes (e.g. for `tf.summary.image` after `decode_png`)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def heatmap_figure(percent, title):
    """A `k x k` grid of % values (None: never seen) as an annotated heat map."""
    figure = new_figure((3.2, 3))
    axis = figure.add_subplot()
    values = [[math.nan if v is None else v for v in row] for row in percent]
    image = axis.imshow(values, vmin=0, vmax=100, cmap="viridis")
    for r, row in enumerate(values):
        for c, value in enumerate(row):
            text = "-" if math.isnan(value) else f"{value:.0f}"
            axis.text(c, r, text, ha="center", va="center", color="w", fontsize=7)
    axis.set_title(title, fontsize=8)
    axis.set_xticks([])
    axis.set_yticks([])
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    return figure


def line_figure(series, xlabel, ylabel, title, reference=None, ylim=(0, 105)):
    """Lines `{label: (style, [(x, y), ...])}` plus an optional dotted gray
    `reference = (label, [(x, y), ...])` (e.g. chance)."""
    figure = new_figure((5, 3.5))
    axis = figure.add_subplot()
    xs = set()
    for label, (style, points) in series.items():
        points = sorted(points)
        xs |= {x for x, _ in points}
        axis.plot(*zip(*points), style, label=label)
    if reference is not None:
        label, points = reference
        axis.plot(*zip(*sorted(points)), ":", color="gray", label=label)
        xs |= {x for x, _ in points}
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_xticks(sorted(xs))
    axis.set_ylim(*ylim)
    axis.legend(fontsize=7)
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


__all__ = [
    "figure_png",
    "format_mean_std",
    "heatmap_figure",
    "line_figure",
    "markdown_table",
    "mean_std",
    "new_figure",
    "save_figure",
    "timing_table",
]
