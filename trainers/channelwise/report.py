"""The channel-wise experiment's report: Table 1, geometry, border rows, claim, figures.

From the records of `trainers.channelwise.results.aggregate` (one per combination over
seeds), `report` renders `results.md`'s section from them and draws `location_accuracy.png`,
`learning_curves.png` (PermuteNet and SortNet: validation accuracy against training
steps, from `metrics.jsonl`) and per-cell heat maps. Nothing here imports TensorFlow.
"""

import os

from tfposenc.vocabulary import TARGETS
from trainers.channelwise.cells import cells_section
from trainers.channelwise.config import ISOLATES
from trainers.channelwise.curves import (
    curve_verdict,
    curves_figure,
    flatness_lines,
    learning_curves,
)
from trainers.channelwise.results import poster_value
from trainers.framework import reports


def _cell(result, poster=True):
    if result is None:
        return ""
    text = f"{result['accuracy']:.1f}"
    if len(result["seeds"]) > 1:
        text += f" ± {result['accuracy_std']:.1f}"
    if poster and result.get("poster") is not None:
        text += f" (poster: {result['poster']})"
    return text


def main_table(config, table):
    by_key = {(r["padding_mode"], r["network"], r["task"], r["grid_size"]): r for r in table}
    tasks = [t for t in TARGETS if t in config.tasks]
    names = {"location": "location", "class": "image class"}
    header = ["padding", "network"] + [
        f"{names[t]} {k}x{k}" for t in tasks for k in config.grid_sizes
    ]
    rows = [
        [mode, network]
        + [_cell(by_key.get((mode, network, t, k))) for t in tasks for k in config.grid_sizes]
        for mode in config.padding_modes
        for network in config.networks
    ]
    chance = ["chance", ""] + [
        f"{100 / (k * k if t == 'location' else _classes(table, t)):.1f}"
        for t in tasks
        for k in config.grid_sizes
    ]
    return reports.markdown_table(header, rows + [chance])


def _classes(table, task):
    chances = [r["chance"] for r in table if r["task"] == task]
    return 100 / chances[0] if chances else float("nan")


def geometry(config, table):
    cell = config.cell_size or {"digits": 8}.get(config.dataset, 32)
    rows = []
    for k in sorted({r["grid_size"] for r in table}):
        size = next(r["feature_map_size"] for r in table if r["grid_size"] == k)
        positions = size[0] * size[1] / (k * k)
        rows.append(
            [k, f"{cell} px", f"{k * cell}x{k * cell}", f"{size[0]}x{size[1]}", f"{positions:.2f}"]
        )
    header = ["k", "cell", "canvas", "last feature map", "final positions per cell"]
    return reports.markdown_table(header, rows)


def phase_ceiling(cell, k, stride):
    """Best location accuracy (%) of a network that sees only the sampling phase."""
    phases = len({(i * cell) % stride for i in range(k)})
    return 100.0 * phases**2 / (k * k)


def border_section(config, table):
    rows = [
        r for r in table if r["grid_size"] == config.border_grid_size and r["network"] == "gapnet"
    ]
    rows = [
        r
        for r in rows
        if r["task"] == "location" and (r["padding_mode"], r["downsampling"]) in BORDER
    ]
    if not rows:
        return [
            "",
            "Border rows (circular padding, + BlurPool, + APS) are not in this run: "
            "`--border-grid-size 4` adds them.",
        ]
    k, cell = config.border_grid_size, config.cell_size or {"digits": 8}.get(config.dataset, 32)
    stride = k * cell // rows[0]["feature_map_size"][0]
    ceiling = phase_ceiling(cell, k, stride)
    body = [[r["padding_mode"], r["downsampling"], _cell(r, poster=False)] for r in rows]
    return [
        "",
        f"## The border is the source (GAPNet location, k = {k}, {cell}-px cells)",
        "",
        "Circular padding removes the border. What is left is the sampling phase: with a "
        f"total stride of {stride}, cells fall into phase classes, so a circular network "
        f"can reach at most {ceiling:.1f}% (chance {100 / k**2:.1f}%). Blur keeps the phase; "
        "adaptive polyphase sampling (APS) removes it, so circular + APS should sit at "
        "chance. BlurPool's padding follows the backbone's (circular here).",
        "",
        *reports.markdown_table(["padding", "downsampling", "location"], body),
    ]


BORDER = {("zero", "stride"), ("circular", "stride"), ("circular", "blur"), ("circular", "aps")}


VERDICT = {"shown": "shown", "not shown": "**not shown**", "inconclusive": "inconclusive"}


def claims_section(claims):
    """The claims checked against a null that can fail (`trainers.channelwise.claims`)."""
    if not claims:
        return []
    rows = [[c["claim"], VERDICT[c["verdict"]], c["evidence"]] for c in claims]
    return [
        "",
        "## What this run shows",
        "",
        "Each accuracy carries a 95% interval from seeds (when there are several), "
        "permutations (PermuteNet), test images (Wilson, over the distinct images, shared "
        "by the seeds and the cells) and cells (errors cluster by cell: the cells are "
        "resampled whole, one draw for every seed). Location at k >= 4 enters claim (a) "
        "with its cells grouped into at most 10 labels (the grouped chance), as many as "
        "the classes. Accuracies enter as gains over chance, so a "
        'network that learned nothing shows nothing; "tracks" is shown only by an '
        "equivalence test within a declared margin, never by overlapping intervals "
        "(`results.json`: `claims`).",
        "",
        *reports.markdown_table(["claim", "verdict", "evidence"], rows),
    ]


def report(config, table, run_dir, claims=()):
    """The markdown section of `results.md` for the aggregated `table` and its checked
    `claims` (`trainers.channelwise.claims.check`); draws the figures."""
    seeds = config.seed_list
    for r in table:
        r["poster"] = poster_value(config, r)
        if r.get("per_cell_accuracy"):
            what = "location" if r["task"] == "location" else "image class"
            figure = reports.heatmap_figure(
                r["per_cell_accuracy"], f"{r['combination']} ({what} %)"
            )
            reports.save_figure(
                figure, os.path.join(run_dir, "heatmaps", f"{r['combination']}.png")
            )
    location_figure(config, table, run_dir)
    curves = learning_curves(run_dir)
    if curves:
        title = (
            f"{config.dataset} validation images (held out of training), one placement each; "
            f"PermuteNet: {config.permutations} permutations"
        )
        reports.save_figure(
            curves_figure(curves, title), os.path.join(run_dir, "learning_curves.png")
        )
    matches = config.dataset == "cifar10" and config.backbone == "resnet18"
    caption = (
        "`poster:` is the ICCV 2021 poster's ResNet-18 on CIFAR-10 (width 64, 20 epochs of "
        f"50,000 canvases); this run: width {config.width}, its own budget."
        if matches
        else "The poster's numbers (ResNet-18 on CIFAR-10) are not shown: this run is "
        f"{config.backbone} on {config.dataset}."
    )
    statistic = (
        f"mean ± sample standard deviation over seeds {', '.join(map(str, seeds))}"
        if len(seeds) > 1
        else f"one seed ({seeds[0]}); `--seeds 0 1 2` adds mean ± std"
    )
    budgets = budget_text(config, table)
    name = f"{config.dataset}, {config.backbone} width {config.width}"
    lines = [
        f"# Channel-wise position experiment ({name})",
        "",
        f"Test accuracy (%) of the model after the last epoch (no selection), {statistic}. "
        f"Test: {_test_protocol(config)}. " + caption,
        "",
        *main_table(config, table),
        "",
        budgets,
        "",
        "## Geometry",
        "",
        "The backbone's last feature map per grid size: fewer final positions than cells "
        "means the head sees a map smaller than the grid.",
        "",
        *geometry(config, table),
        "",
        "## What each row isolates",
        "",
        *[f"- `{n}`: {ISOLATES[n]}." for n in config.networks],
        *border_section(config, table),
        *claims_section(claims),
    ]
    if curves:
        lines += [
            "",
            "## Learning curves (`learning_curves.png`)",
            "",
            f"Accuracy after every epoch on {config.validation_examples} *validation images* "
            "held out of the training split (disjoint from the test images), one fixed "
            "placement each, scored as the final test is: PermuteNet "
            f"under {config.permutations} permutations (the same ones every epoch). Still "
            "rising means a gain of more than 2 points over the last 20% of the steps.",
            "",
        ]
        lines += [
            f"- {group}: {curve_verdict(points)}." for group, points in sorted(curves.items())
        ]
        if config.stop_when_flat is not None:
            lines += ["", f"Each run at its end (`--stop-when-flat {config.stop_when_flat:g}`, "
                      "its rule over the last 40% of the steps):", ""]  # fmt: skip
            lines += flatness_lines(curves, config.stop_when_flat)
    return lines + cells_section(table)


STYLES = {"gapnet": "-o", "gapnet1x1": "-D", "classifier": "-.^", "permutenet": "--s"}


def location_figure(config, table, run_dir):
    """`location_accuracy.png`: location accuracy against k, one line per network and
    padding; lines are offset sideways and marked so that equal ones stay visible."""
    series = {}
    for r in table:
        if (
            r["task"] == "location"
            and r["downsampling"] == "stride"
            and r["grid_size"] in config.grid_sizes
        ):
            key = f"{r['network']}, {r['padding_mode']}"
            series.setdefault(key, (STYLES.get(r["network"], ":v"), []))[1].append(
                (r["grid_size"], r["accuracy"])
            )
    if not series:
        return
    figure = reports.new_figure((5, 3.5))
    axis = figure.add_subplot()
    spread = 0.08 * (min(config.grid_sizes[1:] or (2,)) - min(config.grid_sizes) or 1)
    for index, (label, (style, points)) in enumerate(sorted(series.items())):
        shift = (index - (len(series) - 1) / 2) * spread
        xs, ys = zip(*sorted(points), strict=True)
        axis.plot([x + shift for x in xs], ys, style, label=label, markersize=6, alpha=0.85)
    ks = sorted(config.grid_sizes)
    axis.plot(ks, [100 / k**2 for k in ks], ":", color="gray", label="chance")
    axis.set_xticks(ks)
    axis.set_xlabel("grid size k (lines offset sideways so equal ones stay visible)")
    axis.set_ylabel("location accuracy (%)")
    axis.set_ylim(0, 105)
    axis.legend(fontsize=7)
    axis.set_title(f"Location accuracy, {config.dataset}", fontsize=9)
    figure.tight_layout()
    reports.save_figure(figure, os.path.join(run_dir, "location_accuracy.png"))


def _test_protocol(config):
    images = f"{config.test_examples} test images" if config.test_examples else "the test split"
    if config.eval_placement == "random":
        return f"{images}, k^2 passes with fresh random placements"
    return f"{images}, each in every cell"


def _g(value):
    return "?" if value is None else f"{value:.3g}"


def budget_text(config, table):
    """What the rows trained with, and whether they are matched."""
    trained = sorted(
        {
            (r.get("steps"), r.get("learning_rate"), r.get("beta_1"), r.get("batch_size"))
            for r in table
        },
        key=str,
    )
    if config.matched and len(trained) <= 1:
        steps, rate, beta, batch = trained[0] if trained else (None,) * 4
        steps = f"{steps} steps"
        flat = getattr(config, "stop_when_flat", None)  # configs from before the option
        if flat is not None:
            steps = (f"up to {steps}, each stopped once its validation curve was flat "
                     f"(`--stop-when-flat {flat:g}`; its epochs in the table)")  # fmt: skip
        return (
            f"Matched budgets: every row trained {steps} (batch {batch}, Adam lr "
            f"{_g(rate)}, beta_1 {_g(beta)}), so the classifier is the control of PermuteNet "
            "and SumNet: only the head differs. The dense read-outs start from "
            + (
                "PyTorch's default (uniform +-1/sqrt(fan_in), the authors')."
                if config.readout_init == "torch"
                else "Keras' Glorot uniform (`--readout-init glorot`), not the authors' init."
            )
        )
    rows = {}
    for r in table:
        rows.setdefault(r["network"], (r.get("steps"), r.get("learning_rate"), r.get("beta_1")))
    listed = "; ".join(
        f"{n}: {s} steps, lr {_g(lr)}, beta_1 {_g(b)}" for n, (s, lr, b) in rows.items()
    )
    return (
        f"**The rows are not matched**: the networks trained with different budgets "
        f"({listed}; `--order-free-*`), so the classifier is not an exact control of "
        "PermuteNet here."
    )


__all__ = ["report"]
