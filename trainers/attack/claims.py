"""The attack's claims, judged from the sweep records alone by tested rules
(`tfposenc.stats`): `shown`, `not shown` or `inconclusive`, each with its evidence.

Per model and at each sweep fraction nearest one of `config.claim_fractions` (each
judged on its own; values in %; a test against random draws needs `MIN_DRAWS` = 19 of
them, else it is inconclusive):

- "ranked removal hurts more than random": the ranked value against the random draws'
  values (`tfposenc.stats.beyond_random`, `"less"`: a 95% prediction interval with the
  sample SD, or an exact rank test from 39 draws; under the null, the ranked set being
  one more random set, wrongly shown at most 2.5% of the time).
- "... than magnitude-matched random" (when the sweep has `random_matched` records,
  random sets with as many channels per decile of mean |z| as the ranked set): the
  same test against those draws: a ranking that only finds big channels fails it.
- "ranked removal hurts more than the magnitude control": two deterministic rankings,
  so the random SD is no yardstick: paired on the same canvases by a clustered
  bootstrap (`paired_difference_interval`) when both records carry `canvas_values`
  (per canvas, `(images, cells)`), else inconclusive.
- "the damage is larger at the border than inside": the ranked set's `border - inner`
  against the same difference of each random draw (the regions of one draw are
  measured together, so the per-draw differences carry their correlation); `shown`
  also needs ranked removal to hurt more than random at the border itself (else a
  ranking that spares every region, the inner cells most, would "show" it).

Nothing is judged on a model whose unablated overall value is not at least
`config.skill_margin` above chance (an untrained network's numbers would pass or fail
these checks by accident): those claims are `inconclusive`, and the evidence says why.
No TensorFlow.
"""

import math

import numpy as np

from tfposenc.stats import beyond_random, paired_difference_interval

RANDOM_CLAIM = "ranked removal hurts more than random"
MATCHED_CLAIM = "ranked removal hurts more than magnitude-matched random"
MAGNITUDE_CLAIM = "ranked removal hurts more than the magnitude control"
BORDER_CLAIM = "the damage is larger at the border than inside"
LEVEL = 0.95
MIN_DRAWS = 19  # fewer draws: no test against random is judged (inconclusive)
PERCENT = 100.0


def _record(records, fraction, selection, region):
    for r in records:
        if math.isclose(r["fraction"], fraction, abs_tol=1e-9):
            if r["selection"] == selection and r["region"] == region:
                return r
    return None


def _draws(record):
    """The per-draw values of a random record, or None when fewer than 2 are recorded."""
    values = (record or {}).get("values")
    return None if values is None or len(values) < 2 else [float(v) for v in values]


def _against(ranked, draws, text):
    """`(verdict, evidence)` of `ranked` below the random `draws` (fractions)."""
    if draws is None:
        return "inconclusive", f"{text}: the random draws' values are not in the records"
    if len(draws) < MIN_DRAWS:
        return "inconclusive", (
            f"{text}: {len(draws)} random draws, fewer than the {MIN_DRAWS} a test against "
            "random needs (raise --claim-draws)"
        )
    if not np.all(np.isfinite([ranked, *draws])):
        return "inconclusive", f"{text}: a value is not a number (NaN: e.g. no class present)"
    test = beyond_random(ranked, draws, "less", LEVEL)
    where = f"below {PERCENT * test['bound']:.1f}" if test["method"] == "prediction" else "by rank"
    return test["verdict"], (
        f"{text}; {test['method']} test over {test['draws']} draws (random "
        f"{PERCENT * test['mean']:.1f} ± {PERCENT * test['sd']:.1f}, 95% {where}), "
        f"p = {test['p_value']:.3g}: {test['verdict']}"
    )


def _canvases(record):
    values = (record or {}).get("canvas_values")
    if values is None:
        return None
    array = np.asarray(values, dtype="float64")
    return array.reshape((1, 1, *array.shape) if array.ndim == 2 else (1, 1, -1, 1))


def _claim(claim, name, fraction, verdict, evidence, skilled, skill_text):
    if not skilled:
        verdict, evidence = "inconclusive", skill_text
    return {"claim": claim, "combination": name, "fraction": fraction,
            "verdict": verdict, "evidence": evidence}  # fmt: skip


def claims(config, results):
    """The list of `{"claim", "combination", "fraction", "verdict", "evidence"}` of
    every model in `results` (records with `combination`, `sweep` and `chance` in %)."""
    out = []
    for r in results:
        sweep, name = r["sweep"], r["combination"]
        fractions = sorted({x["fraction"] for x in sweep if x["fraction"] > 0})
        if not fractions:
            continue
        base = _record(sweep, 0.0, "ranked", "overall")
        chance = r.get("chance", 0.0) / PERCENT
        skilled = base is not None and base["value"] - chance >= config.skill_margin
        skill_text = (
            f"unablated overall {PERCENT * (base['value'] if base else math.nan):.1f}% is not "
            f"{PERCENT * config.skill_margin:.0f} points above chance ({PERCENT * chance:.1f}%):"
            " too close to an untrained network's for its damage to mean anything; not judged"
        )
        nearest = (min(fractions, key=lambda f: abs(f - c)) for c in config.claim_fractions)
        for fraction in dict.fromkeys(nearest):
            judged = _model_claims(sweep, fraction)
            out += [_claim(c, name, fraction, *v, skilled, skill_text) for c, *v in judged]
    return out


def _model_claims(sweep, fraction):
    """`(claim, verdict, evidence)` of one model at one fraction."""
    at = f"{PERCENT * fraction:g}% removed"
    ranked = _record(sweep, fraction, "ranked", "overall")
    out = []
    for claim, selection in ((RANDOM_CLAIM, "random"), (MATCHED_CLAIM, "random_matched")):
        control = _record(sweep, fraction, selection, "overall")
        if control is not None:
            text = f"{at}, overall: ranked {PERCENT * ranked['value']:.1f}"
            out.append((claim, *_against(ranked["value"], _draws(control), text)))
    magnitude = _record(sweep, fraction, "magnitude", "overall")
    if magnitude is not None:
        out.append((MAGNITUDE_CLAIM, *_paired(ranked, magnitude, at)))
    regions = {
        region: (_record(sweep, fraction, "ranked", region),
                 _draws(_record(sweep, fraction, "random", region)))
        for region in ("border", "inner")
    }  # fmt: skip
    if all(rank is not None for rank, _ in regions.values()):
        out.append((BORDER_CLAIM, *_border(regions, at)))
    return out


def _paired(ranked, magnitude, at):
    first, second = _canvases(ranked), _canvases(magnitude)
    text = (
        f"{at}, overall: ranked {PERCENT * ranked['value']:.1f}, magnitude "
        f"{PERCENT * magnitude['value']:.1f}"
    )
    usable = first is not None and second is not None and first.shape == second.shape
    if not usable or not (np.all(np.isfinite(first)) and np.all(np.isfinite(second))):
        return "inconclusive", (
            f"{text}; two deterministic rankings: the random SD is no yardstick, and the "
            "finite per-canvas values a paired comparison needs are not in the records"
        )
    test = paired_difference_interval(first, second, LEVEL, alternative="less")
    return test["verdict"], (
        f"{text}; paired on {first.size} canvases (bootstrap by image and cell): "
        f"ranked - magnitude {PERCENT * test['difference']:+.1f} "
        f"[{PERCENT * test['low']:+.1f}, {PERCENT * test['high']:+.1f}]: {test['verdict']}"
    )


def _border(regions, at):
    (border, border_draws), (inner, inner_draws) = regions["border"], regions["inner"]
    gap = border["value"] - inner["value"]
    text = f"{at}: ranked border - inner {PERCENT * gap:+.1f}"
    if border_draws is None or inner_draws is None or len(border_draws) != len(inner_draws):
        return "inconclusive", f"{text}; the random draws' values per region are not in the records"
    draws = [b - i for b, i in zip(border_draws, inner_draws, strict=True)]
    verdict, evidence = _against(gap, draws, text + " against each random draw's")
    if verdict == "shown":
        at_border, _ = _against(border["value"], border_draws, "")
        if at_border != "shown":
            verdict = "inconclusive"  # relatively worse, but no extra damage there
            evidence += (
                "; but ranked removal does not hurt more than random at the border "
                "itself: inconclusive"
            )
    return verdict, evidence


__all__ = ["BORDER_CLAIM", "MAGNITUDE_CLAIM", "MATCHED_CLAIM", "RANDOM_CLAIM", "claims"]
