"""Learning curves of the channel-wise experiment, read back from `metrics.jsonl`.

PermuteNet learns far more slowly than the networks that keep the channel order, so its
accuracy against training steps (`learning_curves.png`) says whether its budget was
enough: `curve_verdict` reports the last value and the gain over the last 20% of the
steps. The points are `val_permuted_accuracy` (`PermutedValidation`): the validation
images (held out of the training split, disjoint from the test images) with one fixed
placement each, PermuteNet under `--permutations` permutations; runs
written before it existed fall back to Keras' `val_accuracy` (one permutation per batch).
"""

import json
import os
import statistics

import numpy as np
from scipy import stats

from trainers.framework import reports


def learning_curves(run_dir, networks=("classifier", "permutenet", "sortnet", "sumnet")):
    """`{combination group: [(step, accuracy %, seed), ...]}` from `metrics.jsonl`."""
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
        value = record.get("val_permuted_accuracy", 100 * record["val_accuracy"])
        curves.setdefault(record["group"], []).append((step, value, record["seed"]))
    return curves


def curves_figure(curves, title):
    figure = reports.new_figure((6, 3.6))
    axis = figure.add_subplot()
    colours = {}  # one colour per grid size and network; class solid, location dashed
    markers = "osD^v<>p*h"
    for group, points in sorted(curves.items()):
        key = group.rsplit("-", 1)[0]
        colour = colours.setdefault(key, f"C{len(colours) % 10}")
        style = "--" if group.endswith("-location") else "-"
        for number, seed in enumerate(sorted({s for _, _, s in points})):
            xs, ys = zip(*sorted((x, y) for x, y, s in points if s == seed), strict=True)
            label = group if number == 0 else None
            marker = markers[list(colours).index(key) % len(markers)]
            axis.plot(xs, ys, style, color=colour, label=label, lw=1.2, marker=marker, ms=3)
    axis.set_xlabel("training steps")
    axis.set_ylabel("accuracy (%)")
    axis.set_ylim(0, 105)
    axis.legend(fontsize=6)
    axis.set_title(title, fontsize=8)
    figure.tight_layout()
    return figure


def flatness(steps, values, window=0.4, tolerance=1.0, level=0.95):
    """The flatness rule: the least-squares slope of accuracy (%) against log2(step) over
    the points in the last `window` of the steps (step >= (1 - window) x the last), in
    points per doubling of the steps, with its `level` interval (Student's t, n - 2 df).
    `flat` when the interval lies inside +-`tolerance` (an equivalence test: a noisy
    curve is not flat by failing to find a slope). Needs 4 points in the window, else
    `flat` is False and `slope` None.

    Returns `{"flat", "slope", "low", "high", "points"}`."""
    steps, values = np.asarray(steps, "float64"), np.asarray(values, "float64")
    if steps.shape != values.shape or steps.ndim != 1 or np.any(steps <= 0):
        raise ValueError(f"`steps` must be positive, one per value. Received: {steps!r}")
    keep = steps >= (1.0 - window) * steps.max() if steps.size else steps.astype(bool)
    x, y = np.log2(steps[keep]), values[keep]
    if x.size < 4 or np.ptp(x) == 0:
        return {"flat": False, "slope": None, "low": None, "high": None, "points": int(x.size)}
    centred = x - x.mean()  # closed form: a constant curve has slope 0 and SE 0
    slope = float(centred @ y / (centred @ centred))
    residual = y - y.mean() - slope * centred
    se = np.sqrt(residual @ residual / (x.size - 2) / (centred @ centred))
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 2) * se)
    low, high = slope - half, slope + half
    flat = bool(-tolerance < low and high < tolerance)
    return {"flat": flat, "slope": slope, "low": low, "high": high, "points": int(x.size)}


def flatness_lines(curves, tolerance):
    """Markdown lines, one per run (group and seed): its last step and value and the
    flatness rule at its end (`flatness`): the slope in points per doubling of the steps
    with its 95% interval, and whether the run stopped flat or at the cap."""
    lines = []
    for group, points in sorted(curves.items()):
        for seed in sorted({s for _, _, s in points}):
            xs, ys = zip(*sorted((x, y) for x, y, s in points if s == seed), strict=True)
            rule = flatness(xs, ys, tolerance=tolerance)
            if rule["slope"] is None:
                judged = f"too few epochs to judge ({rule['points']} in the window)"
            else:
                judged = (f"slope {rule['slope']:+.2f} [{rule['low']:+.2f}, {rule['high']:+.2f}]"
                          f" points per doubling: {'flat' if rule['flat'] else 'not flat'}")  # fmt: skip
            lines.append(f"- {group}, seed {seed}: {ys[-1]:.1f}% after {xs[-1]} steps; {judged}")
    return lines


def curve_verdict(points):
    """A sentence on one learning curve: the last value and the gain over the last 20%
    of the steps (the nearest logged step at or before 80%)."""
    seeds = sorted({s for _, _, s in points})
    by_step = {}
    for x, y, _ in points:
        by_step.setdefault(x, []).append(y)
    steps = sorted(x for x, ys in by_step.items() if len(ys) == len(seeds))
    if len(steps) < 4:
        return "too few epochs to judge"
    mean = {x: statistics.fmean(by_step[x]) for x in steps}
    end = steps[-1]
    quarter = max((x for x in steps if x <= 0.8 * end), default=steps[0])
    gain = mean[end] - mean[quarter]
    trend = "still rising" if gain > 2 else ("flat" if gain > -2 else "falling")
    return (
        f"{mean[end]:.1f}% after {end} steps, {gain:+.1f} points over the last "
        f"{end - quarter} steps: {trend}"
    )


__all__ = ["flatness", "flatness_lines", "curve_verdict", "curves_figure", "learning_curves"]
