"""The channel-wise experiment's report: Table 1, geometry, border rows, claim, figures.

From the records of `trainers.channelwise.results.aggregate` (one per combination over
seeds), `report` renders `results.md`'s section from them and draws `location_accuracy.png`,
`learning_curves.png` (PermuteNet and SortNet: validation accuracy against training
steps, from `metrics.jsonl`) and per-cell heat maps. Nothing here imports TensorFlow.
"""

import os

from trainers.channelwise.config import ISOLATES
from trainers.channelwise.curves import curve_verdict, curves_figure, learning_curves
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
    tasks = [t for t in ("location", "class") if t in config.tasks]
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


def claim_checks(config, table):
    """The default run's targets, each with its measured value and verdict."""

    def acc(network, task, k):
        return next(
            (
                r["accuracy"]
                for r in table
                if (r["network"], r["task"], r["grid_size"], r["padding_mode"], r["downsampling"])
                == (network, task, k, "zero", "stride")
            ),
            None,
        )

    checks = []
    for network in ("gapnet", "classifier"):
        values = [acc(network, "location", k) for k in config.grid_sizes]
        if None not in values:
            shown = ", ".join(f"{v:.1f}" for v in values)
            checks.append((f"{network} location >= 99% at every k", shown, min(values) >= 99))
    semantic = acc("permutenet", "class", 3)
    if semantic is not None:
        checks.append(("permutenet image class >= 50% at k = 3", f"{semantic:.1f}", semantic >= 50))
    for k in (5, 7):
        mine, control = acc("permutenet", "location", k), acc("classifier", "location", k)
        if mine is not None and control is not None:
            checks.append(
                (
                    f"permutenet location at k = {k} <= half the classifier's",
                    f"{mine:.1f} vs {control:.1f}",
                    mine <= control / 2,
                )
            )
    if not checks:
        return []
    rows = [[name, value, "yes" if ok else "**no**"] for name, value, ok in checks]
    note = []
    if semantic is not None and semantic < 50:
        note = [
            "",
            "PermuteNet's image-class accuracy misses the 50% target within this budget, so "
            "part of its location loss may be under-training rather than the shuffle; its "
            "learning curves below say whether more steps (`--order-free-epochs`) would help.",
        ]
    return [
        "",
        "## Does this run test the claim?",
        "",
        *reports.markdown_table(["target", "measured", "met"], rows),
        *note,
    ]


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
    return [
        "",
        "## Accuracy per cell (mean over seeds)",
        "",
        "Class-task canvases keep their cell, so image-class accuracy is scored per cell too.",
        "",
        *reports.markdown_table(["combination", "worst cell", "best cell", "heat map"], rows),
    ]


def report(config, table, run_dir):
    """The markdown section of `results.md` for the aggregated `table`; draws the figures."""
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
    series = {}
    for r in table:
        if (
            r["task"] == "location"
            and r["downsampling"] == "stride"
            and r["grid_size"] in config.grid_sizes
        ):
            style = (
                "-o"
                if r["network"].startswith("gapnet")
                else ("-.^" if r["network"] == "classifier" else "--s")
            )
            series.setdefault(f"{r['network']}, {r['padding_mode']}", (style, []))[1].append(
                (r["grid_size"], r["accuracy"])
            )
    if series:
        chance = ("chance", [(k, 100 / k**2) for k in config.grid_sizes])
        figure = reports.line_figure(
            series,
            "grid size k",
            "location accuracy (%)",
            f"Location accuracy, {config.dataset}",
            reference=chance,
        )
        reports.save_figure(figure, os.path.join(run_dir, "location_accuracy.png"))
    curves = learning_curves(run_dir)
    if curves:
        title = f"Order-free networks, validation accuracy, {config.dataset}"
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
    rate, beta = config.order_free_learning_rate, config.order_free_beta_1
    budgets = (
        f"Epochs: {config.epochs} for GAPNet, the classifier and the border rows; "
        f"{config.order_free_epochs} for PermuteNet and SortNet (Adam lr "
        f"{config.learning_rate if rate is None else rate}, beta_1 "
        f"{config.beta_1 if beta is None else beta}; others lr {config.learning_rate}, "
        f"beta_1 {config.beta_1}); {_steps(table)}."
    )
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
        *claim_checks(config, table),
    ]
    if curves:
        lines += ["", "## Learning curves (`learning_curves.png`)", ""]
        lines += [
            f"- {group}: {curve_verdict(points)}." for group, points in sorted(curves.items())
        ]
    return lines + cells_section(table)


def _test_protocol(config):
    images = f"{config.test_examples} test images" if config.test_examples else "the test split"
    if config.eval_placement == "random":
        return f"{images}, k^2 passes with fresh random placements"
    return f"{images}, each in every cell"


def _steps(table):
    steps = {}
    for r in table:
        if r.get("steps") is not None:
            steps.setdefault(r["network"], r["steps"])
    return "training steps " + ", ".join(f"{n} {s}" for n, s in steps.items())


__all__ = ["report"]
