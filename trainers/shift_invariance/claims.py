"""Table 2's records over seeds and the poster's comparisons as paired differences.

`aggregate`: one record per row (dataset, method): means over seeds, their standard
deviation, a 95 % interval, and `seeds` (the per-seed records). `check`: each comparison
the poster makes (AugShift against its own control `shift_aug`, the same crops without
the consistency term; BlurPool against the strided baseline; APS against the baseline)
on Cons.8 and Cons.16, as the paired difference (points) of the per-image agreements,
every row measured on the same views, with its interval (`compare`: the spread between seeds plus
the sampling of test images, t with Welch-Satterthwaite df) and a verdict: `"shown"` (the interval lies above zero), `"not shown"` (below
zero: the other way) or `"inconclusive"`. No TensorFlow.
"""

import math
import statistics

import numpy as np

from tfposenc.stats import combined_interval, proportion_variance
from trainers.framework.seeds import aggregate as aggregate_seeds

COMPARISONS = (
    ("augshift", "shift_aug", "AugShift's consistency term raises Cons.{m} over shift_aug"),
    ("blurpool", "baseline", "BlurPool raises Cons.{m} over the strided baseline"),
    ("aps", "baseline", "APS raises Cons.{m} over the strided baseline"),
)
METRICS = ("top1", "cons8", "cons16", "circular_consistency")
PAIRED = (8, 16)


def row_interval(values, trials, level=0.95):
    """`(low, high)` (%) of a row's mean over seeds: the spread between seeds (t, n - 1
    df) plus the binomial sampling of `trials` test views (Wilson variance)."""
    mean = statistics.fmean(values)
    parts = [(float(proportion_variance(mean / 100, trials, level)) * 1e4, math.inf)]
    if len(values) > 1:
        parts.append((statistics.variance(values) / len(values), len(values) - 1))
    low, high, _ = combined_interval(mean, parts, level)
    return max(low, 0.0), min(high, 100.0)


def aggregate(per_seed, passes):
    """One record per (dataset, method), in first-seen order (see the module docstring):
    the means and `_std` over seeds and `seeds` from `trainers.framework.seeds.aggregate`,
    then each metric's `_interval` and the row's shared values."""
    rows = aggregate_seeds(
        per_seed, METRICS, group=lambda r: f"{r['dataset']}-{r['method']}", keep=False
    )
    for row in rows:
        runs = row["seeds"]
        row.update(dataset=runs[0]["dataset"], method=runs[0]["method"])
        for key in METRICS:
            trials = runs[0]["examples"] * (1 if key == "top1" else passes)
            row[f"{key}_interval"] = list(row_interval([r[key] for r in runs], trials))
        row["step_seconds"] = statistics.fmean(r["step_seconds"] for r in runs)
        row["examples"] = runs[0]["examples"]
        row["test_digest"] = runs[0]["test_digest"]
        row["export"] = [r["export"] for r in runs if r.get("export")]  # one per seed
        row["curve"] = {m: statistics.fmean(r["curve"][m] for r in runs) for m in runs[0]["curve"]}
    return rows


def per_image(row, m, seeds):
    """`(seeds, 1, images, 1)` per-image agreement (%) of a row at the given seeds."""
    by_seed = {r["seed"]: r[f"agreement_cons{m}"] for r in row["seeds"]}
    return 100.0 * np.asarray([by_seed[s] for s in seeds], float)[:, None, :, None]


def compare(first, second, m, level=0.95):
    """The paired difference `first - second` on Cons.m (points) with its interval.

    Per seed `s`, `d_s` is the mean over images of the per-image difference (the same
    views per image for both rows). The interval adds two independent parts
    (`tfposenc.stats.combined_interval`, Welch-Satterthwaite t): the spread of `d_s`
    between seeds (`var(d_s) / n`, n - 1 df: a retrained model is a new draw) and the
    sampling of test images (the variance over images of the seed-averaged difference
    / images). With 3 seeds the seed part has 2 df, so t is large: a bootstrap over 3
    seeds would hide that (simulated: it showed a null difference 6 % of the time with a
    seed SD of 2 points; this rule stays under 2.5 %, `tests/trainers/shift_invariance/
    test_claims_calibration.py`). Verdict: `"shown"` when the interval lies above zero,
    `"not shown"` when below, else `"inconclusive"`.
    """
    if first["test_digest"] != second["test_digest"]:
        raise ValueError(
            f"`first` and `second` must be measured on the same test images. Received: "
            f"{first['combination']} test_digest={first['test_digest']!r}, "
            f"{second['combination']} test_digest={second['test_digest']!r}"
        )
    seeds = sorted({r["seed"] for r in first["seeds"]} & {r["seed"] for r in second["seeds"]})
    a, b = per_image(first, m, seeds), per_image(second, m, seeds)
    differences = (a - b)[:, 0, :, 0]  # [seeds, images], points
    per_seed = differences.mean(axis=1)
    per_image_mean = differences.mean(axis=0)
    difference = float(per_seed.mean())
    parts = []
    if len(seeds) > 1:
        parts.append((float(np.var(per_seed, ddof=1)) / len(seeds), len(seeds) - 1))
    images = differences.shape[1]
    if images > 1:
        parts.append((float(np.var(per_image_mean, ddof=1)) / images, images - 1))
    low, high, df = combined_interval(difference, parts, level)
    if low > 0:
        verdict = "shown"
    elif high < 0:
        verdict = "not shown"
    else:
        verdict = "inconclusive"
    return {
        "difference": difference,
        "low": low,
        "high": high,
        "level": level,
        "df": df,
        "verdict": verdict,
        "clusters": {"seeds": len(seeds), "images": images},
        "seeds": seeds,
    }


def check(rows, level=0.95):
    """`claims`: `{"claim", "verdict", "evidence", "dataset", "first", "second", "m",
    "difference", "low", "high", "seeds"}` per comparison, dataset and m."""
    claims = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        by = {r["method"]: r for r in rows if r["dataset"] == dataset}
        for first, second, text in COMPARISONS:
            if first not in by or second not in by:
                continue
            for m in PAIRED:
                found = compare(by[first], by[second], m, level)
                seeds = found["seeds"]
                evidence = (
                    f"{dataset}: {first} - {second} = {found['difference']:+.2f} points of "
                    f"Cons.{m}, {100 * level:.0f}% interval [{found['low']:+.2f}, "
                    f"{found['high']:+.2f}] (paired: the same views per image; t interval "
                    f"with the spread over {len(seeds)} seed(s) and the sampling of "
                    f"{found['clusters']['images']} test images)"
                )
                if len(seeds) < 2:
                    evidence += "; one seed: the interval holds no training noise"
                claims.append(
                    {
                        "claim": f"{dataset}: " + text.format(m=m),
                        "verdict": found["verdict"],
                        "evidence": evidence,
                        "dataset": dataset,
                        "first": first,
                        "second": second,
                        "m": m,
                        **{k: found[k] for k in ("difference", "low", "high", "level")},
                        "seeds": seeds,
                    }
                )
    return claims


__all__ = ["COMPARISONS", "aggregate", "check", "compare", "per_image", "row_interval"]
