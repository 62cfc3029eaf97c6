"""The claims of Table 1, checked against a null that can fail (no TensorFlow).

Every accuracy gets a 95% interval, `mean +- 1.96 * se`, whose variance adds three
parts: the spread over seeds (sample variance / seeds, when there are two or more),
over permutations (PermuteNet: `permutation_std**2 / permutations`) and over test
images (binomial, `p (1 - p) / images`; the k^2 placement passes reuse the same images,
so the distinct images count). With one seed the training noise is not in the interval:
`evidence` says so.

Verdicts are `"shown"`, `"not shown"` or `"inconclusive"`; a verdict is inconclusive when
the intervals that would decide it overlap, and no check is passed by a network that
learned nothing: accuracies enter as *gains over chance*, and a check whose inputs are
not above chance by more than their interval is inconclusive.

- `locates`: GAPNet / the classifier locate at every grid size (>= 99%).
- `class_above_chance` (b): PermuteNet's image-class accuracy is above chance by more
  than its interval.
- `location_costs_more` (a): the shuffle costs location more than class: the retention
  (PermuteNet's gain over chance / the matched classifier's) is lower for location than
  for class, intervals apart. Needs matched budgets and (b).
- `tracks_sumnet` (c): PermuteNet tracks SumNet (the scalar read-out): both above chance
  and SumNet within PermuteNet's interval ("not shown" when the intervals are apart).
"""

import math

Z = 1.96  # two-sided 95%


def interval(record):
    """`(low, high)` 95% interval of a record's accuracy (%)."""
    p = record["accuracy"]
    variance = 0.0
    seeds = [s["accuracy"] for s in record.get("seeds") or []]
    if len(seeds) > 1:
        mean = sum(seeds) / len(seeds)
        variance += sum((a - mean) ** 2 for a in seeds) / (len(seeds) - 1) / len(seeds)
    if record.get("permutations"):
        variance += (record.get("permutation_std") or 0.0) ** 2 / record["permutations"]
    images = test_images(record)
    if images:
        fraction = min(max(p / 100.0, 0.0), 1.0)
        variance += 1e4 * fraction * (1 - fraction) / (images * max(len(seeds), 1))
    half = Z * math.sqrt(variance)
    return p - half, p + half


def test_images(record):
    """Distinct test images behind a record (its examples over the k^2 passes)."""
    examples = record.get("examples")
    return examples // record["grid_size"] ** 2 if examples else None


def gain(record):
    """`(value, low, high)`: accuracy minus chance, with its interval."""
    low, high = interval(record)
    chance = record["chance"]
    return record["accuracy"] - chance, low - chance, high - chance


def ratio(top, bottom):
    """`(value, low, high)` of `top / bottom` by interval arithmetic (both `(v, lo, hi)`);
    None unless `bottom` is above zero throughout."""
    if bottom[1] <= 0:
        return None
    corners = [t / b for t in top[1:] for b in bottom[1:]]
    return top[0] / bottom[0], min(corners), max(corners)


def apart(a, b):
    """-1 if interval `a` lies below `b`, 1 if above, 0 if they overlap."""
    if a[1] < b[0]:
        return -1
    if a[0] > b[1]:
        return 1
    return 0


def _fmt(triple, unit=""):
    value, low, high = triple
    return f"{value:.2f}{unit} [{low:.2f}, {high:.2f}]"


def _acc(record):
    low, high = interval(record)
    return f"{record['accuracy']:.1f}% [{low:.1f}, {high:.1f}] (chance {record['chance']:.1f}%)"


def check(records, matched=True):
    """The claims list of `results.json` from the aggregated records."""
    by_key = {
        (r["network"], r["task"], r["grid_size"]): r
        for r in records
        if r.get("padding_mode", "zero") == "zero" and r.get("downsampling", "stride") == "stride"
    }
    grids = sorted({k for _, _, k in by_key})
    one_seed = all(len(r.get("seeds") or []) <= 1 for r in records)
    note = " One seed: the interval holds permutations and test images, not training noise."
    note = note if one_seed else ""
    claims = []

    for network in ("gapnet", "classifier"):
        rows = [by_key.get((network, "location", k)) for k in grids]
        if rows and None not in rows:
            values = ", ".join(f"k={r['grid_size']}: {_acc(r)}" for r in rows)
            ok = all(r["accuracy"] >= 99 for r in rows)
            claims.append(
                {
                    "claim": f"{network} locates at every grid size (>= 99%)",
                    "verdict": "shown" if ok else "not shown",
                    "evidence": values,
                }
            )

    above = {}
    for k in grids:
        record = by_key.get(("permutenet", "class", k))
        if record is None:
            continue
        value = gain(record)
        verdict = "shown" if value[1] > 0 else ("not shown" if value[2] <= 0 else "inconclusive")
        above[k] = verdict == "shown"
        claims.append(
            {
                "claim": f"(b) permutenet image class is above chance by more than its "
                f"interval, k = {k}",
                "verdict": verdict,
                "evidence": f"{_acc(record)}; gain over chance {_fmt(value, ' pts')}." + note,
            }
        )

    for k in grids:
        rows = {
            (n, t): by_key.get((n, t, k))
            for n in ("permutenet", "classifier")
            for t in ("location", "class")
        }
        if None in rows.values():
            continue
        kept = {
            t: ratio(gain(rows["permutenet", t]), gain(rows["classifier", t]))
            for t in ("location", "class")
        }
        claim = (
            f"(a) the shuffle costs location more than class, k = {k} (retention = permutenet's "
            "gain over chance / the matched classifier's)"
        )
        if not matched:
            verdict, why = "inconclusive", "the budgets are not matched: the rows are no control. "
        elif None in kept.values():
            verdict, why = "inconclusive", "the classifier is not above chance. "
        elif not above.get(k):
            verdict, why = "inconclusive", "permutenet's class accuracy is not above chance (b). "
        else:
            side = apart(kept["location"][1:], kept["class"][1:])
            verdict = {-1: "shown", 1: "not shown", 0: "inconclusive"}[side]
            why = "" if side else "the intervals overlap. "
        shown = {t: ("undefined" if v is None else _fmt(v)) for t, v in kept.items()}
        claims.append(
            {
                "claim": claim,
                "verdict": verdict,
                "evidence": why
                + f"retention location {shown['location']}, class {shown['class']}; "
                + "; ".join(f"{n} {t} {_acc(r)}" for (n, t), r in rows.items())
                + "."
                + note,
            }
        )

    for k in grids:
        for task in ("location", "class"):
            mine, scalar = by_key.get(("permutenet", task, k)), by_key.get(("sumnet", task, k))
            if mine is None or scalar is None:
                continue
            mine_gain, scalar_gain = gain(mine), gain(scalar)
            side = apart(interval(mine), interval(scalar))
            low, high = interval(mine)
            if side:
                verdict = "not shown"
            elif mine_gain[1] <= 0 or scalar_gain[1] <= 0:
                verdict = "inconclusive"  # a network at chance tracks anything at chance
            elif low <= scalar["accuracy"] <= high:
                verdict = "shown"
            else:
                verdict = "inconclusive"
            extra = ""
            if mine.get("expected_logit_accuracy") is not None:
                extra = (
                    f"; diagnostic: permutenet's expected-logit accuracy (weights replaced by "
                    f"their row means) {mine['expected_logit_accuracy']:.1f}%"
                )
            claims.append(
                {
                    "claim": f"(c) permutenet tracks sumnet (the scalar read-out), {task}, k = {k}",
                    "verdict": verdict,
                    "evidence": f"permutenet {_acc(mine)}, sumnet {_acc(scalar)}{extra}." + note,
                }
            )
    return claims


__all__ = ["check", "gain", "interval", "ratio"]
