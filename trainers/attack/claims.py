"""The attack's claims, judged from the sweep records alone: `shown`, `not shown` or
`inconclusive`, each with its evidence.

Per model and at each sweep fraction nearest one of `config.claim_fractions` (each
judged on its own; values in %):

- "ranked removal hurts more than random": `d = ranked - random` on `overall`, against
  the SD of the random draws.
- "ranked removal hurts more than the magnitude control": `d = ranked - magnitude` on
  `overall` (the magnitude ranking removes the largest channels: what a flip score that
  only measured size would do), against the same random SD.
- "the damage is larger at the border than inside": `d = (ranked - random)[border] -
  (ranked - random)[inner]`, against `sqrt(sd_border^2 + sd_inner^2)`; `shown` also
  needs ranked removal to hurt more than random at the border itself (else a ranking
  that spares every region, the inner cells most, would "show" it).

A claim is `shown` when `d < -max(sd, NOISE)`, `not shown` when `d > max(sd, NOISE)`,
and `inconclusive` when `|d|` is within that band. Nothing is judged on a model whose
unablated overall value is not at least `config.skill_margin` above chance (an untrained
network's numbers would pass or fail these checks by accident): those claims are
`inconclusive`, and the evidence says why. No TensorFlow.
"""

import math

RANDOM_CLAIM = "ranked removal hurts more than random"
MAGNITUDE_CLAIM = "ranked removal hurts more than the magnitude control"
BORDER_CLAIM = "the damage is larger at the border than inside"
NOISE = 0.005  # half a percentage point: below it, a difference is not one
PERCENT = 100.0


def _record(records, fraction, selection, region):
    for r in records:
        if math.isclose(r["fraction"], fraction, abs_tol=1e-9):
            if r["selection"] == selection and r["region"] == region:
                return r
    return None


def verdict(difference, sd):
    """`shown` (d below -band), `not shown` (above band) or `inconclusive` (within)."""
    if difference is None or math.isnan(difference) or math.isnan(sd):
        return "inconclusive"
    band = max(sd, NOISE)
    if difference < -band:
        return "shown"
    if difference > band:
        return "not shown"
    return "inconclusive"


def _judged(claim, combination, fraction, difference, sd, text, skilled, skill_text):
    if not skilled:
        return {"claim": claim, "combination": combination, "fraction": fraction,
                "verdict": "inconclusive", "evidence": skill_text}  # fmt: skip
    result = verdict(difference, sd)
    band = max(sd, NOISE)
    evidence = (
        f"{text}: d = {PERCENT * difference:+.1f} points against a band of "
        f"{PERCENT * band:.1f} (random SD {PERCENT * sd:.1f}); {result}"
    )
    return {"claim": claim, "combination": combination, "fraction": fraction,
            "verdict": result, "evidence": evidence}  # fmt: skip


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
            out += _model_claims(sweep, name, fraction, skilled, skill_text)
    return out


def _model_claims(sweep, name, fraction, skilled, skill_text):
    """The claims of one model at one fraction."""
    out = []
    at = f"{PERCENT * fraction:g}% removed"
    ranked = _record(sweep, fraction, "ranked", "overall")
    random = _record(sweep, fraction, "random", "overall")
    out.append(_judged(
        RANDOM_CLAIM, name, fraction, ranked["value"] - random["value"], random["std"],
        f"{at}, overall: ranked {PERCENT * ranked['value']:.1f}, random "
        f"{PERCENT * random['value']:.1f} ± {PERCENT * random['std']:.1f}",
        skilled, skill_text,
    ))  # fmt: skip
    magnitude = _record(sweep, fraction, "magnitude", "overall")
    if magnitude is not None:
        out.append(_judged(
            MAGNITUDE_CLAIM, name, fraction, ranked["value"] - magnitude["value"],
            random["std"],
            f"{at}, overall: ranked {PERCENT * ranked['value']:.1f}, magnitude "
            f"{PERCENT * magnitude['value']:.1f}",
            skilled, skill_text,
        ))  # fmt: skip
    parts = {
        region: (_record(sweep, fraction, "ranked", region),
                 _record(sweep, fraction, "random", region))
        for region in ("border", "inner")
    }  # fmt: skip
    if all(a is not None and b is not None for a, b in parts.values()):
        gaps = {k: a["value"] - b["value"] for k, (a, b) in parts.items()}
        sd = math.hypot(parts["border"][1]["std"], parts["inner"][1]["std"])
        judged = _judged(
            BORDER_CLAIM, name, fraction, gaps["border"] - gaps["inner"], sd,
            f"{at}: ranked - random {PERCENT * gaps['border']:+.1f} at the border, "
            f"{PERCENT * gaps['inner']:+.1f} inside",
            skilled, skill_text,
        )  # fmt: skip
        border_sd = parts["border"][1]["std"]
        if judged["verdict"] == "shown" and verdict(gaps["border"], border_sd) != "shown":
            judged["verdict"] = "inconclusive"  # relatively worse, but no extra damage there
            judged["evidence"] = judged["evidence"].replace(
                "; shown", "; but ranked removal does not hurt more than random at the "
                "border itself: inconclusive"
            )  # fmt: skip
        out.append(judged)
    return out


__all__ = ["BORDER_CLAIM", "MAGNITUDE_CLAIM", "RANDOM_CLAIM", "claims", "verdict"]
