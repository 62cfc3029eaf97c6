"""Reports: `results.md` tables and figures, rendered from result dicts.

Figures use matplotlib's object API (`matplotlib.figure.Figure` drawn by
`FigureCanvasAgg`), so rendering never touches pyplot's global state nor switches the
backend of a user's session. Nothing here imports TensorFlow.
"""

import io
import math
import os
import statistics

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


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


# The one-line meaning of each verdict of a `claims` list (`results.json`).
VERDICTS = {
    "shown": "the run's numbers support the claim, against a null that could have failed",
    "not shown": "the run's numbers contradict the claim",
    "inconclusive": "the deciding intervals overlap (too few seeds, images or training "
    "steps, or a network that learned nothing): the run neither supports nor contradicts "
    "the claim",
}


def claim_line(claim):
    """The claim as one line: its text and, when present, where it was judged."""
    where = [str(claim[key]) for key in ("combination",) if claim.get(key) is not None]
    if isinstance(claim.get("fraction"), (int, float)):
        where.append(f"{100 * claim['fraction']:g}% removed")
    return str(claim.get("claim", "?")) + (f" ({', '.join(where)})" if where else "")


def run_shows(claims):
    """The opening paragraph of `results.md` (markdown lines) from the run's `claims`
    (each a dict with `claim` and `verdict`, optionally `combination` and `fraction`):
    whether the paper's effect was reproduced, the count of each verdict and its
    meaning in one line, and the claims that were not shown."""
    if not claims:
        return [
            "**What this run shows.** This experiment judges no claim automatically; the "
            "tables below are the measurements, to be read against the paper.",
        ]
    counts = {v: sum(c.get("verdict") == v for c in claims) for v in VERDICTS}
    other = len(claims) - sum(counts.values())
    if counts["not shown"] and counts["shown"]:
        headline = "This run reproduces the paper **only in part**"
    elif counts["not shown"]:
        headline = "This run does **not reproduce** the paper"
    elif counts["inconclusive"] or other:
        headline = "This run does not settle every claim"
    else:
        headline = "This run **reproduces** every claim it checks"
    told = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    lines = [
        f"**What this run shows.** {headline}: of {len(claims)} "
        f"claim{'s' if len(claims) != 1 else ''} checked, "
        f"{told}{f', {other} with another verdict' if other else ''}.",
        "",
        *(f"- **{v}** ({counts[v]}): {VERDICTS[v]}." for v in VERDICTS if counts[v]),
    ]
    missed = [claim_line(c) for c in claims if c.get("verdict") == "not shown"]
    if missed:
        lines += ["", "Not shown: " + "; ".join(missed) + "."]
    return lines + ["", "Each claim's evidence is in the claims table below and in "
                    "`results.json` (`claims`)."]  # fmt: skip


def with_opening(section, opening):
    """`section` (markdown lines) with `opening` after its title (a first `# ` line),
    or before everything when it has none."""
    section = list(section)
    at = 1 if section and section[0].startswith("# ") else 0
    head, rest = section[:at], section[at:]
    while rest and not rest[0].strip():
        rest = rest[1:]
    return [*head, *([""] if head else []), *opening, *([""] if rest else []), *rest]


def new_figure(size):
    """A `Figure` with an Agg canvas attached (no pyplot)."""
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
    "claim_line",
    "heatmap_figure",
    "line_figure",
    "markdown_table",
    "mean_std",
    "new_figure",
    "run_shows",
    "save_figure",
    "timing_table",
    "with_opening",
    "VERDICTS",
]
