"""The claims of Table 1, judged by tested rules (`tfposenc.stats`; no TensorFlow).

Every accuracy gets a 95% interval (Student's t, Welch-Satterthwaite df) whose
variance adds the parts the record holds (`parts`; points^2):

- seeds: the sample variance of the per-seed accuracies / seeds (n - 1 df), whenever
  there are two seeds or more;
- permutations (PermuteNet): `permutation_std^2 / (permutations x seeds)`;
- test images: the binomial variance Wilson's interval implies, over the *distinct*
  test images (the k^2 placement passes reuse them) and not divided by the seeds or the
  cells (every seed and every cell is scored on the same images): the largest variance
  the images can add (a per-image hit rate in [0, 1] with mean p varies by at most
  p (1 - p)), as the records hold no per-image hits; never zero, also at 100%;
- cells: errors cluster by cell, so canvases that share a cell are not independent
  trials: the cells are resampled whole, one draw shared by every seed, from each seed's
  `per_cell_accuracy` x `per_cell_examples` (`tfposenc.stats.clustered_parts`; cells - 1
  df; `RESAMPLES` resamples from a generator seeded with `RESAMPLE_SEED`, so the same
  records always get the same verdicts). Records whose seeds hold no grid fall back to
  the record's own (seed-averaged) grid.

Verdicts are "shown", "not shown" or "inconclusive"; a one-sided claim is shown when
its 95% interval lies wholly on its side (wrongly shown at most 2.5% of the time under
its null), and nothing is passed by a network that learned nothing.

- `locates`: GAPNet / the classifier locate at every grid size (>= 99%).
- (b) `class_above_chance`: PermuteNet's class accuracy is above chance (the interval
  of its gain over chance lies above 0).
- (a) the shuffle costs location more than class: one interval of the difference of
  the two retentions (PermuteNet's gain over chance / the matched classifier's; delta
  method), shown when it lies below 0. Judged at equal label cardinality: at k = 3 the
  9 cells against the 10 classes; at k >= 4 location is scored with the cells grouped
  into at most 10 labels, with the grouped chance (`trainers.channelwise.cells.
  grouped_record`; records without grouped scores stay inconclusive). Only with matched
  budgets, the classifier above chance on both tasks and (b) shown.
- (c) PermuteNet tracks SumNet: an equivalence test (TOST) of their difference
  against a declared margin (`MARGIN` points), both networks above chance; shown only
  when the interval of the difference lies inside the margin, never by failing to
  find a difference.
"""

import math

import numpy as np

from tfposenc.stats import (
    clustered_parts,
    combined_interval,
    equivalence_test,
    proportion_variance,
)
from tfposenc.vocabulary import TARGETS
from trainers.channelwise.cells import GROUPED_LABELS, grouped_record

LEVEL = 0.95
MARGIN = 5.0  # points: "tracks" means the true difference is within this
FAIR_GRIDS = (3,)  # k^2 location labels as many as the 10 classes without grouping
# (larger grids are judged with their cells grouped into GROUPED_LABELS labels)
RESAMPLES = 10000  # cell resamples per interval (Monte Carlo error of the part ~2%)
RESAMPLE_SEED = 0


def test_images(record):
    """Distinct test images behind a record (its examples over the k^2 passes)."""
    examples = record.get("examples")
    return examples // record["grid_size"] ** 2 if examples else None


def _grid(values):
    return np.array([np.nan if v is None else v for row in values for v in row], float)


def cell_results(record):
    """`(hits, examples)`, `(seeds, cells)` arrays: each seed's `per_cell_accuracy` x
    `per_cell_examples` (the record's counts when a seed has none; equal counts when
    neither has), or one row from the record's own grid when a seed has no grid; None
    without any grid."""
    seeds = record.get("seeds") or []
    sources = seeds if seeds and all(s.get("per_cell_accuracy") for s in seeds) else [record]
    if not sources[0].get("per_cell_accuracy"):
        return None
    hits, examples = [], []
    for source in sources:
        accuracy = _grid(source["per_cell_accuracy"])
        counts = source.get("per_cell_examples") or record.get("per_cell_examples")
        counts = np.ones_like(accuracy) if counts is None else _grid(counts)
        counts = np.where(np.isnan(accuracy), 0.0, counts)
        hits.append(np.clip(np.nan_to_num(accuracy) / 100.0, 0.0, 1.0) * counts)
        examples.append(counts)
    return np.array(hits), np.array(examples)


def parts(record):
    """`[(name, variance, df)]` of a record's mean accuracy (points^2)."""
    seeds = [s["accuracy"] for s in record.get("seeds") or [] if s.get("accuracy") is not None]
    found = []
    if len(seeds) > 1:
        found.append(("seeds", float(np.var(seeds, ddof=1)) / len(seeds), len(seeds) - 1))
    permutations = record.get("permutations") or 0
    if permutations > 1 and record.get("permutation_std"):
        variance = record["permutation_std"] ** 2 / (permutations * max(len(seeds), 1))
        found.append(("permutations", variance, permutations - 1))
    images = test_images(record)
    if images:
        fraction = min(max(record["accuracy"] / 100.0, 0.0), 1.0)
        found.append(("test images", 1e4 * float(proportion_variance(fraction, images)), math.inf))
    results = cell_results(record)
    if results is not None:
        found += [
            (name, 1e4 * variance, df)
            for name, variance, df in clustered_parts(*results, RESAMPLES, RESAMPLE_SEED)
            if name == "cells"
        ]
    return found


def estimate(record):
    """`(variance, df)` of a record's mean accuracy (points^2; df by Satterthwaite)."""
    found = parts(record)
    variance = sum(v for _, v, _ in found)
    if variance <= 0:
        return 0.0, math.inf
    return variance, combined_interval(0.0, [(v, df) for _, v, df in found], LEVEL)[2]


def interval(record):
    """`(low, high)` 95% interval of a record's accuracy (%), within [0, 100]."""
    variance, df = estimate(record)
    low, high, _ = combined_interval(record["accuracy"], [(variance, df)], LEVEL)
    return max(low, 0.0), min(high, 100.0)


def gain(record):
    """`(value, low, high)`: accuracy minus chance, with its interval."""
    low, high = interval(record)
    chance = record["chance"]
    return record["accuracy"] - chance, low - chance, high - chance


def retention_difference(mine, control, gains=None):
    """`(value, low, high)` of retention(location) - retention(class), retention =
    `mine`'s gain over chance / `control`'s (dicts by task), by the delta method; None
    unless `control` is above chance on both tasks. `gains`: `{id(record): gain}`."""
    gains = gains or {}
    value, pieces = 0.0, []
    for task, sign in (("location", 1.0), ("class", -1.0)):
        top, bottom = (gains.get(id(r)) or gain(r) for r in (mine[task], control[task]))
        if bottom[1] <= 0:
            return None
        ratio = top[0] / bottom[0]
        value += sign * ratio
        (v_top, df_top), (v_bottom, df_bottom) = estimate(mine[task]), estimate(control[task])
        pieces += [
            (v_top / bottom[0] ** 2, df_top),
            (ratio**2 * v_bottom / bottom[0] ** 2, df_bottom),
        ]
    low, high, _ = combined_interval(value, pieces, LEVEL)
    return value, low, high


def holds(record):
    """What a record's interval holds, in words."""
    words = {
        "seeds": lambda df: f"the spread of {len(record['seeds'])} seeds",
        "permutations": lambda df: f"{record['permutations']} permutations",
        "test images": lambda df: (
            f"{test_images(record)} test images (Wilson, shared by the seeds and the cells)"
        ),
        "cells": lambda df: f"{df + 1} cells resampled whole ({RESAMPLES} resamples)",
    }
    found = parts(record)
    names = [name for name, _, _ in found]
    text = ", ".join(words[name](df) for name, _, df in found) or "nothing"
    if "seeds" not in names:
        text += "; one seed: no training noise"
    return text


def _fmt(triple, unit=""):
    value, low, high = triple
    return f"{value:.2f}{unit} [{low:.2f}, {high:.2f}]"


def _acc(record):
    low, high = interval(record)
    return f"{record['accuracy']:.1f}% [{low:.1f}, {high:.1f}] (chance {record['chance']:.1f}%)"


def _claim(claim, verdict, evidence):
    return {"claim": claim, "verdict": verdict, "evidence": evidence}


def check(records, matched=True, margin=MARGIN):
    """The claims list of `results.json` from the aggregated records."""
    by_key = {
        (r["network"], r["task"], r["grid_size"]): r
        for r in records
        if r.get("padding_mode", "zero") == "zero" and r.get("downsampling", "stride") == "stride"
    }
    grids = sorted({k for _, _, k in by_key})
    claims = []
    for network in ("gapnet", "classifier"):
        rows = [by_key.get((network, "location", k)) for k in grids]
        if rows and None not in rows:
            ok = all(r["accuracy"] >= 99 for r in rows)
            values = ", ".join(f"k={r['grid_size']}: {_acc(r)}" for r in rows)
            claims.append(_claim(f"{network} locates at every grid size (>= 99%)",
                                 "shown" if ok else "not shown", values))  # fmt: skip
    above = {}
    for k in grids:
        record = by_key.get(("permutenet", "class", k))
        if record is not None:
            claims.append(_above_chance(record, above))
    for k in grids:
        rows = {(n, t): by_key.get((n, t, k)) for n in ("permutenet", "classifier")
                for t in TARGETS}  # fmt: skip
        if None not in rows.values():
            claims.append(_costs_location(rows, k, matched, above.get(k)))
    for k in grids:
        for task in TARGETS:
            mine, scalar = by_key.get(("permutenet", task, k)), by_key.get(("sumnet", task, k))
            if mine is not None and scalar is not None:
                claims.append(_tracks(mine, scalar, task, k, margin))
    return claims


def _above_chance(record, above):
    value = gain(record)
    verdict = "shown" if value[1] > 0 else ("not shown" if value[2] <= 0 else "inconclusive")
    above[record["grid_size"]] = verdict == "shown"
    return _claim(
        f"(b) permutenet image class is above chance by more than its interval, "
        f"k = {record['grid_size']}",
        verdict,
        f"{_acc(record)}; gain over chance {_fmt(value, ' pts')}; the 95% interval holds "
        f"{holds(record)}.",
    )


def _costs_location(rows, k, matched, class_above):
    rows, grouped, labels = dict(rows), k * k > GROUPED_LABELS, ""
    if grouped:
        views = {n: grouped_record(rows[n, "location"]) for n in ("permutenet", "classifier")}
        if None not in views.values():
            rows.update({(n, "location"): view for n, view in views.items()})
            labels = (f"location scored with the {k * k} cells grouped into "
                      f"{views['permutenet']['labels']} labels (grouped chance); ")  # fmt: skip
    mine = {t: rows["permutenet", t] for t in TARGETS}
    control = {t: rows["classifier", t] for t in TARGETS}
    gains = {id(r): gain(r) for r in rows.values()}
    difference = retention_difference(mine, control, gains)
    verdict = "inconclusive"
    if not matched:
        why = "the budgets are not matched: the rows are no control. "
    elif grouped and not labels:
        why = (f"{k * k} location labels against 10 classes and no grouped location scores "
               "in the records: retentions at unequal label cardinality are not "
               "comparable. ")  # fmt: skip
    elif difference is None:
        why = "the classifier is not above chance on both tasks. "
    elif not class_above:
        why = "permutenet's class accuracy is not above chance (b). "
    else:
        high, low = difference[2], difference[1]
        verdict = "shown" if high < 0 else ("not shown" if low > 0 else "inconclusive")
        why = "" if verdict != "inconclusive" else "the interval of the difference holds 0. "
    kept = {t: gains[id(mine[t])][0] / gains[id(control[t])][0]
            if gains[id(control[t])][0] > 0 else None for t in mine}  # fmt: skip
    shown = {t: "undefined" if v is None else f"{v:.2f}" for t, v in kept.items()}
    interval_text = "undefined" if difference is None else _fmt(difference)
    return _claim(
        f"(a) the shuffle costs location more than class, k = {k} (retention = permutenet's "
        "gain over chance / the matched classifier's)",
        verdict,
        why + labels + f"retention location {shown['location']}, class {shown['class']}; location - "
        f"class {interval_text} (95%, delta method; each accuracy's interval holds "
        f"{holds(mine['location'])}); "
        + "; ".join(f"{n} {t} {_acc(r)}" for (n, t), r in rows.items()) + ".",
    )  # fmt: skip


def _tracks(mine, scalar, task, k, margin):
    (v_mine, df_mine), (v_scalar, df_scalar) = estimate(mine), estimate(scalar)
    difference = mine["accuracy"] - scalar["accuracy"]
    df = combined_interval(0.0, [(v_mine, df_mine), (v_scalar, df_scalar)], LEVEL)[2]
    if v_mine + v_scalar <= 0:
        verdict, text = "inconclusive", "no variance in the records"
    else:
        test = equivalence_test(difference, math.sqrt(v_mine + v_scalar), margin, df, LEVEL)
        verdict = test["verdict"]
        text = f"difference {difference:+.1f} [{test['low']:.1f}, {test['high']:.1f}] pts"
        if verdict == "shown" and (gain(mine)[1] <= 0 or gain(scalar)[1] <= 0):
            verdict = "inconclusive"  # a network at chance tracks anything at chance
            text += "; not both above chance"
    extra = ""
    if mine.get("expected_logit_accuracy") is not None:
        extra = (f"; diagnostic: permutenet's expected-logit accuracy (weights replaced by "
                 f"their row means) {mine['expected_logit_accuracy']:.1f}%")  # fmt: skip
    return _claim(
        f"(c) permutenet tracks sumnet (the scalar read-out), {task}, k = {k}",
        verdict,
        f"equivalence (TOST) within a declared margin of +-{margin:g} points: {text}; "
        f"permutenet {_acc(mine)}, sumnet {_acc(scalar)}{extra}; each interval holds "
        f"{holds(mine)}.",
    )


__all__ = [
    "FAIR_GRIDS",
    "MARGIN",
    "RESAMPLES",
    "cell_results",
    "check",
    "estimate",
    "gain",
    "interval",
    "parts",
]
