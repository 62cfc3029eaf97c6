"""The attack's rules (`trainers.attack.claims`): built cases, and the error rates of
"ranked vs random" and "border vs inner" simulated on sweep records."""

import numpy as np
import pytest

from trainers.attack.claims import (
    BORDER_CLAIM,
    MAGNITUDE_CLAIM,
    MATCHED_CLAIM,
    RANDOM_CLAIM,
    claims,
)
from trainers.attack.config import AttackConfig

CONFIG = AttackConfig(claim_fractions=(0.2,), skill_margin=0.1)


def sweep(unablated, ranked, draws, border_shift=0.0, magnitude=None, matched=None, canvases=None):
    """Sweep records at fractions 0 and 0.2. `ranked`: `{region: value}` at 0.2;
    `draws`: `{region: [values]}` of the random draws at 0.2 (same draws in every region)."""
    rows = []
    for region in ("overall", "border", "inner"):
        common = dict(padding="zero", task="location", region=region, metric="accuracy")
        for selection in ("ranked", "random"):
            rows.append(dict(common, fraction=0.0, selection=selection, value=unablated,
                             std=0.0, values=[unablated]))  # fmt: skip
        rows.append(dict(common, fraction=0.2, selection="ranked", value=ranked[region],
                         std=0.0, values=[ranked[region]]))  # fmt: skip
        values = list(draws[region])
        rows.append(dict(common, fraction=0.2, selection="random", value=float(np.mean(values)),
                         std=float(np.std(values)), values=values, draws=len(values)))  # fmt: skip
        if matched is not None and region == "overall":
            rows.append(dict(common, fraction=0.2, selection="random_matched",
                             value=float(np.mean(matched)), std=float(np.std(matched)),
                             values=list(matched)))  # fmt: skip
        if magnitude is not None and region == "overall":
            rows.append(dict(common, fraction=0.2, selection="magnitude", value=magnitude,
                             std=0.0, values=[magnitude]))  # fmt: skip
    if canvases is not None:
        for row in rows:
            if row["region"] == "overall" and row["fraction"] == 0.2:
                if row["selection"] in canvases:
                    row["canvas_values"] = canvases[row["selection"]]
    return rows


def result(name, rows, chance=100 / 9):
    return dict(combination=name, padding_mode="zero", task="location", sweep=rows,
                chance=chance)  # fmt: skip


def verdicts(results):
    return {(c["combination"], c["claim"]): c["verdict"] for c in claims(CONFIG, results)}


def draws_around(mean, sd, n=19, seed=0):
    return list(np.random.default_rng(seed).normal(mean, sd, n))


def test_built_untrained_within_and_opposite():
    draws = {
        r: draws_around(0.8, 0.02, seed=i) for i, r in enumerate(("overall", "border", "inner"))
    }
    hits = np.random.default_rng(3).random((40, 9))
    canvases = {"ranked": (hits < 0.3).astype(float), "magnitude": (hits < 0.85).astype(float)}
    built = sweep(0.9, {"overall": 0.3, "border": 0.2, "inner": 0.5}, draws,
                  magnitude=0.85, matched=draws_around(0.75, 0.03, seed=9), canvases=canvases)  # fmt: skip
    within = sweep(0.9, {"overall": 0.79, "border": 0.8, "inner": 0.8}, draws, magnitude=0.79)
    opposite = sweep(0.9, {"overall": 0.95, "border": 0.95, "inner": 0.5}, draws,
                     magnitude=0.4, canvases={"ranked": canvases["magnitude"],
                                              "magnitude": canvases["ranked"]})  # fmt: skip
    untrained = sweep(0.12, {"overall": 0.0, "border": 0.0, "inner": 0.1},
                      {r: draws_around(0.11, 0.01) for r in draws})  # fmt: skip
    found = verdicts([result("built", built), result("within", within),
                      result("opposite", opposite), result("untrained", untrained)])  # fmt: skip
    for claim in (RANDOM_CLAIM, MATCHED_CLAIM, MAGNITUDE_CLAIM, BORDER_CLAIM):
        assert found["built", claim] == "shown", claim
    for claim in (RANDOM_CLAIM, BORDER_CLAIM):
        assert found["within", claim] == "inconclusive"
        assert found["untrained", claim] == "inconclusive"
    for claim in (RANDOM_CLAIM, MAGNITUDE_CLAIM, BORDER_CLAIM):
        assert found["opposite", claim] == "not shown", claim
    # Without per-canvas values, two deterministic rankings are not compared.
    assert found["within", MAGNITUDE_CLAIM] == "inconclusive"
    evidence = next(c["evidence"] for c in claims(CONFIG, [result("within", within)])
                    if c["claim"] == MAGNITUDE_CLAIM)  # fmt: skip
    assert "per-canvas" in evidence


def test_records_without_draw_values_are_not_judged():
    rows = sweep(0.9, {"overall": 0.3, "border": 0.2, "inner": 0.5},
                 {r: draws_around(0.8, 0.02) for r in ("overall", "border", "inner")})  # fmt: skip
    for row in rows:
        row.pop("values")
    found = claims(CONFIG, [result("bare", rows)])
    assert {c["verdict"] for c in found} == {"inconclusive"}
    assert "values are not in the records" in found[0]["evidence"]


def test_nan_values_are_inconclusive_not_an_error():
    draws = {r: draws_around(0.3, 0.02) for r in ("overall", "border", "inner")}
    draws["border"][3] = float("nan")  # a segmentation region with no class present
    rows = sweep(0.5, {"overall": 0.1, "border": float("nan"), "inner": 0.1}, draws,
                 magnitude=0.2, canvases={"ranked": [[np.nan]], "magnitude": [[0.0]]})  # fmt: skip
    found = verdicts([result("seg", rows, chance=10.0)])
    assert found["seg", RANDOM_CLAIM] == "shown"
    assert found["seg", BORDER_CLAIM] == "inconclusive"
    assert found["seg", MAGNITUDE_CLAIM] == "inconclusive"


def test_border_from_per_draw_differences_not_hypot():
    """Draws whose border and inner move together: each draw's border - inner is ~0
    with a small spread, so a ranked set losing 6 more points at the border is shown;
    the old `hypot(sd_border, sd_inner)` band (~7 points) called it inconclusive."""
    rng = np.random.default_rng(4)
    common = rng.normal(0.8, 0.05, 19)
    draws = {"overall": common, "border": common + rng.normal(0, 0.005, 19),
             "inner": common + rng.normal(0, 0.005, 19)}  # fmt: skip
    rows = sweep(0.9, {"overall": 0.55, "border": 0.52, "inner": 0.58}, draws)
    found = verdicts([result("m", rows)])
    assert found["m", BORDER_CLAIM] == "shown"
    assert 0.06 < np.hypot(draws["border"].std(), draws["inner"].std())


def simulated(runs, shift, seed):
    """Per run: the ranked value and 19 random draws for each region (correlated
    regions), ranked shifted by `shift` SD (0: the ranked set is one more random set)."""
    rng = np.random.default_rng(seed)
    common = rng.normal(0.7, 0.03, (runs, 20))
    own = {r: rng.normal(0, 0.02, (runs, 20)) for r in ("border", "inner")}
    regions = {"overall": common, "border": common + own["border"], "inner": common + own["inner"]}
    return regions, shift


@pytest.mark.parametrize("shift, claim", [(0.0, RANDOM_CLAIM), (0.0, BORDER_CLAIM),
                                          (-4.0, RANDOM_CLAIM), (-4.0, BORDER_CLAIM)])  # fmt: skip
def test_error_rates_by_simulation(shift, claim):
    runs = 2000 if shift == 0 else 500
    regions, _ = simulated(runs, shift, seed=int(-shift) + (claim == BORDER_CLAIM))
    # The declared effect: 4 SD below random, the SD of what each claim tests (the border
    # claim tests the border itself, SD hypot(0.03, 0.02), and border - inner, 0.028).
    sd = {"overall": 0.03, "border": float(np.hypot(0.03, 0.02))}
    shown = 0
    for i in range(runs):
        ranked = {r: v[i, 0] for r, v in regions.items()}
        if claim == RANDOM_CLAIM:
            ranked["overall"] += shift * sd["overall"]
        else:  # the border loses `shift` SD of (border - inner) more, and more than random
            ranked["border"] += shift * sd["border"]
            ranked["overall"] += shift * sd["border"]
        draws = {r: v[i, 1:] for r, v in regions.items()}
        found = verdicts([result("m", sweep(0.9, ranked, draws))])
        shown += found["m", claim] == "shown"
    rate = shown / runs
    assert rate <= 0.05 if shift == 0 else rate >= 0.8
