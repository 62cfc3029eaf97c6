"""Learning curves of the channel-wise experiment, read back from `metrics.jsonl`.

PermuteNet learns far more slowly than the networks that keep the channel order, so its
validation accuracy against training steps (`learning_curves.png`) says whether its
budget was enough: `curve_verdict` reports the last value and the gain over the last
quarter of the steps.
"""

import json
import os
import statistics

from trainers.framework import reports


def learning_curves(run_dir, networks=("permutenet", "sortnet")):
    """`{combination group: [(step, validation accuracy %, seed), ...]}` from `metrics.jsonl`."""
    path, curves = os.path.join(run_dir, "metrics.jsonl"), {}
    if not os.path.exists(path):
        return curves
    with open(path) as f:
        records = [json.loads(line) for line in f]
    last = {}  # an epoch logged twice (a kill before its backup) counts once, last try
    for record in records:
        if record.get("network") in networks and "val_accuracy" in record:
            last[(record["combination"], record["epoch"])] = record
    for (_, epoch), record in sorted(last.items(), key=lambda item: item[0]):
        step = epoch * record["steps_per_epoch"]
        curves.setdefault(record["group"], []).append(
            (step, 100 * record["val_accuracy"], record["seed"])
        )
    return curves


def curves_figure(curves, title):
    figure = reports.new_figure((6, 3.6))
    axis = figure.add_subplot()
    colours = {}  # one colour per grid size and network; class solid, location dashed
    for group, points in sorted(curves.items()):
        key = group.rsplit("-", 1)[0]
        colour = colours.setdefault(key, f"C{len(colours) % 10}")
        style = "--" if group.endswith("-location") else "-"
        for number, seed in enumerate(sorted({s for _, _, s in points})):
            xs, ys = zip(*sorted((x, y) for x, y, s in points if s == seed), strict=True)
            label = group if number == 0 else None
            axis.plot(xs, ys, style, color=colour, label=label, lw=1.2)
    axis.set_xlabel("training steps")
    axis.set_ylabel("validation accuracy (%)")
    axis.set_ylim(0, 105)
    axis.legend(fontsize=6)
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


def curve_verdict(points):
    """A sentence on one learning curve: the last value and the gain over the last quarter."""
    seeds = sorted({s for _, _, s in points})
    by_step = {}
    for x, y, _ in points:
        by_step.setdefault(x, []).append(y)
    steps = sorted(x for x, ys in by_step.items() if len(ys) == len(seeds))
    if len(steps) < 4:
        return "too few epochs to judge"
    mean = {x: statistics.fmean(by_step[x]) for x in steps}
    end, quarter = steps[-1], steps[-1 - len(steps) // 4]
    gain = mean[end] - mean[quarter]
    trend = "still rising" if gain > 2 else ("flat" if gain > -2 else "falling")
    return (
        f"{mean[end]:.1f}% after {end} steps, {gain:+.1f} points over the last "
        f"{end - quarter} steps: {trend}"
    )


__all__ = ["curve_verdict", "curves_figure", "learning_curves"]
