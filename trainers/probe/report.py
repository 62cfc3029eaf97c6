"""The probe's section of `results.md`, its figure `probe.png`, and the Wilson interval."""

import math
import os

from tfposenc.vocabulary import TARGETS
from trainers.framework.reports import markdown_table, new_figure, save_figure

# The read-out accuracies are shares of the test canvases: a 95 % interval each.
Z_95 = 1.959963984540054


def wilson_interval(correct, total, z=Z_95):
    """The Wilson score interval `(low, high)` of a proportion `correct / total`.

    A small local function (the project has no statistics module yet): the interval
    `(p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`, which stays inside
    [0, 1] and is not empty at 0 % or 100 %, unlike the normal approximation.
    """
    if total < 1 or not 0 <= correct <= total:
        raise ValueError(
            f"`correct` must be in [0, total] with total >= 1. Received: {correct} of {total}"
        )
    p, n = correct / total, total
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale)


def _cell(record, key):
    value = record.get(key)
    if value is None:
        return "-"
    low, high = record["intervals"][key]
    return f"{value:.1f} [{low:.1f}, {high:.1f}]"


def _mean_std(row, key):
    """`mean ± sample SD` over the seeds of an aggregated record, `-` when not measured."""
    if row.get(key) is None:
        return "-"
    return f"{row[key]:.1f} ± {row[f'{key}_std']:.1f}"


def _percent(value):
    return "-" if value is None else f"{value:.1f}"


def _setup(config, record):
    probe = record["probe"]
    cells = probe["grid_size"] ** 2
    trained = (
        f"Each model was first trained for {config.epochs} x {config.pretrain_steps} steps on "
        f"digit classification (random {config.grid_size} x {config.grid_size} canvases of "
        f"{config.input_size} px): the numbers describe that briefly trained model, not a "
        "converged one."
        if config.pretrain_steps
        else f"Each model was probed as loaded (weights {config.weights}), untrained on digits."
    )
    return (
        f"{trained} Read-outs: {config.steps} steps of Adam on the "
        + ("fine-tuned" if config.fine_tune else "frozen")
        + f" features of {probe['train_images']} training digits in each of the {cells} "
        f"cells. Test: {probe['test_images']} held-out digit images, each in every cell: "
        f"{record['examples']} test canvases per accuracy. Brackets: 95 % Wilson intervals "
        "over the test canvases; the canvases of one image are not independent (the digit "
        f"accuracy rests on {probe['test_images']} distinct images), so the intervals "
        "understate the uncertainty."
    )


def section(config, aggregated, run_dir):
    """The markdown lines of the probe's results from the aggregated records (one per
    model, its seeds under `seeds`); draws `run_dir/probe.png`."""
    readouts = list(config.readouts)
    records = [r for row in aggregated for r in row["seeds"]]
    lines = [f"# Position probe: {config.model} (weights {config.weights})", ""]
    lines += [_setup(config, records[0]), ""]
    rows = [
        (r["variant"], r["seed"], name, _cell(r, f"{name}_location"), _cell(r, f"{name}_class"))
        for r in records
        for name in readouts
    ]
    chance = records[0]["chance"]
    rows.append(("chance", "", "", _percent(chance["location"]), _percent(chance["class"])))
    header = ("model", "seed", "read-out", "location % [95 % CI]", "digit % [95 % CI]")
    lines += markdown_table(header, rows)
    seeds = sorted({r["seed"] for r in records})
    if len(seeds) > 1:
        lines += ["", f"Over the {len(seeds)} seeds (mean ± sample SD):", ""]
        summary = [
            (row["variant"], name, *(_mean_std(row, f"{name}_{t}") for t in TARGETS))
            for row in aggregated
            for name in readouts
        ]
        lines += markdown_table(("model", "read-out", "location %", "digit %"), summary)
    lines += [""]
    header = ("model", "seed", "channels", "top-ranked channels", "removed to halve location")
    ranked = []
    for r in records:
        halving = r["channels_removed_to_halve"]
        top = ", ".join(str(c) for c in r["ranking"]["order"][:8])
        shown = "not reached" if halving is None else f"{halving:g} %"
        ranked.append((r["variant"], r["seed"], r["probe"]["num_channels"], top, shown))
    lines += markdown_table(header, ranked)
    for r in records:
        if r["conversion"] and r["seed"] == seeds[0]:
            lines += ["", f"## Conversion report: {r['variant']} ({len(r['conversion'])} layers)"]
            lines += ["", *markdown_table(("layer", "before", "after"), r["conversion"])]
    save_figure(figure(records, readouts), os.path.join(run_dir, "probe.png"))
    return lines


def figure(records, readouts):
    """Location accuracy per read-out (bars) and against the channels removed (lines)."""
    fig = new_figure((9, 3.5))
    bars, curve = fig.subplots(1, 2)
    width = 0.8 / len(records)
    for index, record in enumerate(records):
        values = [record[f"{name}_location"] for name in readouts]
        positions = [i + index * width for i in range(len(readouts))]
        bars.bar(positions, values, width, label=record["combination"])
        curve.plot(
            [100 * a["fraction"] for a in record["ablation"]],
            [a["location"] for a in record["ablation"]],
            marker="o",
            label=record["combination"],
        )
    for ax in (bars, curve):
        ax.axhline(records[0]["chance"]["location"], color="grey", linestyle="--", linewidth=1)
        ax.set_ylim(0, 105)
    bars.set_xticks([i + 0.4 - width / 2 for i in range(len(readouts))], readouts)
    bars.set_ylabel("location accuracy %")
    bars.legend(fontsize=7)
    curve.set_xlabel("top-ranked channels removed %")
    curve.set_title("classifier read-out (dashed: chance)", fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["figure", "section", "wilson_interval"]
