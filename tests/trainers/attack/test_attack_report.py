"""The attack's claims and report on synthetic sweep records built to satisfy them or not."""

import numpy as np
import pytest

from tests.trainers.smoke import smoke_config
from trainers.attack import EXPERIMENT
from trainers.attack.report import report


def smoke(out, **overrides):
    return smoke_config(EXPERIMENT, out, **overrides)


def _draws(mean, sd, seed, n=19):
    """`n` random-draw values with exactly this mean and population SD."""
    z = np.random.default_rng(seed).normal(size=n)
    return list(mean + sd * (z - z.mean()) / z.std())


def _canvases(value, seed, images=40, cells=9):
    """Per-canvas hits `(images, cells)` whose mean is `value` (to 1 / canvases)."""
    order = np.random.default_rng(seed).permutation(images * cells) + 0.5
    return (order / (images * cells) < value).astype(float).reshape(images, cells).tolist()


def _records(task, unablated, ranked, random, sd, border_extra=0.0, magnitude=None):
    """Synthetic sweep records at fractions 0 and 0.2 for regions overall, border, inner:
    `ranked` / `random` are the values at 0.2 (the border loses `border_extra` more); the
    random records carry 19 draws' `values` (mean `random`, SD `sd`; other draws in each
    region), the ranked and magnitude records at 0.2 their per-canvas hits."""
    rows = []
    regions = (("overall", 0.0), ("border", -border_extra), ("inner", 0.0))
    for seed, (region, shift) in enumerate(regions):
        for fraction, r_value, q_value in ((0.0, unablated, unablated), (0.2, ranked, random)):
            r_value = r_value + (shift if fraction else 0.0)
            m_value = unablated if not fraction else (q_value if magnitude is None else magnitude)
            values = _draws(q_value, sd, seed) if fraction else [q_value]
            common = dict(padding="zero", task=task, fraction=fraction, region=region, metric="m")
            ranked_row = dict(common, selection="ranked", value=r_value, std=0.0)
            magnitude_row = dict(common, selection="magnitude", value=m_value, std=0.0)
            if fraction and region == "overall":
                ranked_row["canvas_values"] = _canvases(r_value, 10)
                magnitude_row["canvas_values"] = _canvases(m_value, 11)
            rows.append(ranked_row)
            rows.append(dict(common, selection="random", value=q_value, std=sd * (fraction > 0),
                             values=values, draws=len(values)))  # fmt: skip
            rows.append(magnitude_row)
    return rows


def _result(name, sweep, chance=4.0):
    return dict(combination=name, padding_mode="zero", task="location", sweep=sweep,
                chance=chance, artifacts=[], flip_magnitude_spearman=0.5)  # fmt: skip


def _verdicts(config, results):
    from trainers.attack.claims import claims

    return {(c["combination"], c["claim"]): c["verdict"] for c in claims(config, results)}


def test_claims_shown_only_when_built_to_satisfy_and_beyond_the_random_sd(tmp_path):
    from trainers.attack.claims import BORDER_CLAIM, MAGNITUDE_CLAIM, RANDOM_CLAIM

    config = smoke(tmp_path, claim_fractions=(0.2,), skill_margin=0.1)
    results = [
        # Built to satisfy: a trained model, ranked far below random and magnitude, the
        # border losing 20 points more than the inner cells.
        _result(
            "built", _records("location", 0.9, 0.3, 0.8, 0.02, border_extra=0.2, magnitude=0.85)
        ),  # fmt: skip
        # Untrained-like: chance-level everything, and a big (meaningless) difference.
        _result("untrained", _records("location", 0.05, 0.0, 0.05, 0.0, border_extra=0.05)),
        # Within the random SD: the differences are smaller than the spread of the draws.
        _result(
            "within", _records("location", 0.9, 0.78, 0.8, 0.05, border_extra=0.02, magnitude=0.79)
        ),  # fmt: skip
        # Relatively worse at the border, but ranked removal spares both regions.
        _result("spares", _records("location", 0.9, 0.85, 0.6, 0.01, border_extra=0.1)),
        # The opposite: ranked removal hurts less than random, the inner cells more.
        _result(
            "opposite", _records("location", 0.9, 0.8, 0.5, 0.01, border_extra=-0.2, magnitude=0.4)
        ),  # fmt: skip
    ]
    verdicts = _verdicts(config, results)
    for claim in (RANDOM_CLAIM, MAGNITUDE_CLAIM, BORDER_CLAIM):
        assert verdicts["built", claim] == "shown"
        assert verdicts["untrained", claim] == "inconclusive"
        assert verdicts["within", claim] == "inconclusive"
        assert verdicts["opposite", claim] == "not shown"
    assert "shown" not in {v for (name, _), v in verdicts.items() if name == "untrained"}
    assert verdicts["spares", BORDER_CLAIM] == "inconclusive"


def test_report_table_claims_and_sweep_series(tmp_path):
    from trainers.attack.report import sweep_series

    config = smoke(tmp_path, fractions=(0.0, 0.2), table_fractions=(0.2,), claim_fractions=(0.2,),
                   random_draws=5, claim_draws=19)  # fmt: skip
    sweep = _records("location", 0.9, 0.3, 0.8, 0.02, border_extra=0.2, magnitude=0.85)
    text = "\n".join(report(config, [_result("built", sweep)], str(tmp_path)))
    assert "| zero | location | overall | 90.0 | 30.0 / 85.0 / 80.0 ± 2.0 (-50.0) |" in text
    assert "| built | 20% | ranked removal hurts more than random | shown |" in text
    draws = (
        f"mean ± SD of {config.random_draws} draws ({max(config.random_draws, config.claim_draws)}"
    )
    assert f"{draws} at the claim fractions, 20%)" in text
    assert (tmp_path / "sweep-built.png").stat().st_size > 1000
    series = sweep_series(sweep)
    assert series["sweep/ranked/border"] == [(0, 90.0), (20, pytest.approx(10.0))]
    assert series["sweep/random_sd/overall"] == [(0, 0.0), (20, pytest.approx(2.0))]
    assert series["sweep/magnitude/inner"] == [(0, 90.0), (20, 85.0)]
