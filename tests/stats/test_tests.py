"""The tests of `tfposenc.stats` against hand computations and scipy, and bad input."""

import numpy as np
import pytest
from scipy import stats

from tfposenc.stats import beyond_random, equivalence_test, paired_difference_interval


def test_prediction_interval_by_hand():
    draws = np.array([0.80, 0.78, 0.83, 0.79, 0.81])
    sd = draws.std(ddof=1)
    t = (0.74 - draws.mean()) / (sd * np.sqrt(1 + 1 / 5))
    found = beyond_random(0.74, draws)
    assert found["method"] == "prediction" and found["draws"] == 5
    assert found["p_value"] == pytest.approx(stats.t.cdf(t, 4))
    assert found["bound"] == pytest.approx(draws.mean() - stats.t.ppf(0.975, 4) * sd * 1.2**0.5)
    assert found["verdict"] == ("shown" if 0.74 < found["bound"] else "inconclusive")
    assert beyond_random(draws.mean(), draws)["verdict"] == "inconclusive"
    assert beyond_random(0.95, draws)["verdict"] == "not shown"
    assert beyond_random(0.95, draws, alternative="greater")["verdict"] == "shown"


def test_rank_test_by_hand_ties_count_against():
    draws = np.arange(39, dtype=float)
    assert beyond_random(-1.0, draws)["method"] == "rank"  # auto: 39 draws reach 1/40
    assert beyond_random(-1.0, draws)["p_value"] == pytest.approx(1 / 40)
    assert beyond_random(-1.0, draws)["verdict"] == "shown"
    assert beyond_random(0.0, draws)["p_value"] == pytest.approx(2 / 40)  # a tie
    assert beyond_random(0.0, draws)["verdict"] == "inconclusive"
    assert beyond_random(38.5, draws)["verdict"] == "not shown"
    # 19 draws cannot reach 2.5 % by rank: auto takes the prediction interval.
    assert beyond_random(-1.0, draws[:19])["method"] == "prediction"
    assert beyond_random(-1.0, draws[:19], method="rank")["verdict"] == "inconclusive"


def test_draws_without_spread_judge_nothing():
    found = beyond_random(0.0, [0.05] * 5)
    assert found["verdict"] == "inconclusive" and np.isnan(found["p_value"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ranked=0.1, random_values=[0.2]), "random_values"),
        (dict(ranked=0.1, random_values=[[0.2, 0.3]]), "random_values"),
        (dict(ranked=float("nan"), random_values=[0.2, 0.3]), "ranked"),
        (dict(ranked=0.1, random_values=[0.2, 0.3], alternative="two-sided"), "alternative"),
        (dict(ranked=0.1, random_values=[0.2, 0.3], level=95), "level"),
        (dict(ranked=0.1, random_values=[0.2, 0.3], method="z"), "method"),
        (dict(ranked=0.1, random_values="abc"), "random_values"),
    ],
)
def test_beyond_random_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        beyond_random(**kwargs)


def test_equivalence_by_hand():
    found = equivalence_test(1.0, 2.0, margin=5.0, df=10)
    q = stats.t.ppf(0.975, 10)
    assert (found["low"], found["high"]) == pytest.approx((1 - 2 * q, 1 + 2 * q))
    p = max(stats.t.sf(6 / 2, 10), stats.t.cdf(-4 / 2, 10))
    assert found["p_value"] == pytest.approx(p)
    assert found["verdict"] == "inconclusive"  # high = 5.46 > 5
    assert equivalence_test(1.0, 1.0, 5.0)["verdict"] == "shown"
    assert equivalence_test(12.0, 1.0, 5.0)["verdict"] == "not shown"
    assert equivalence_test(-12.0, 1.0, 5.0)["verdict"] == "not shown"
    assert equivalence_test(0.0, 30.0, 5.0)["verdict"] == "inconclusive"  # wide: never shown
    found = equivalence_test(np.array([0.0, 12.0]), 1.0, 5.0)
    assert list(found["verdict"]) == ["shown", "not shown"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(standard_error=0.0, margin=5.0), "standard_error"),
        (dict(standard_error=1.0, margin=0.0), "margin"),
        (dict(standard_error=1.0, margin=5.0, df=0), "df"),
        (dict(standard_error=1.0, margin=5.0, level=0), "level"),
    ],
)
def test_equivalence_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        equivalence_test(1.0, **kwargs)


def test_bootstrap_spread_matches_the_analytic_one_on_one_axis():
    rng = np.random.default_rng(0)
    values = rng.normal(0.5, 1.0, size=(1, 1, 400, 1))
    found = paired_difference_interval(values, np.zeros_like(values), resamples=4000)
    assert found["difference"] == pytest.approx(values.mean())
    se = values.std() / np.sqrt(400)  # the bootstrap's (ddof 0)
    assert (found["high"] - found["low"]) / 2 == pytest.approx(1.96 * se, rel=0.08)
    assert found["verdict"] == "not shown" and found["clusters"]["images"] == 400
    assert (
        paired_difference_interval(values, np.zeros_like(values), alternative="greater")["verdict"]
        == "shown"
    )


def test_bootstrap_draws_cells_as_clusters():
    """One cell wrong for every image: with cells resampled, the interval holds the
    spread over 9 cells, not over 9 x 100 canvases."""
    first = np.zeros((1, 1, 100, 9))
    first[..., 0] = -1.0
    found = paired_difference_interval(first, np.zeros_like(first), resamples=2000)
    cells = first[0, 0, 0]
    se = cells.std() / 3
    assert (found["high"] - found["low"]) / 2 == pytest.approx(1.96 * se, rel=0.35)
    assert found["verdict"] == "inconclusive"
    # Seeds broadcast against a network without them; shapes must share the canvases.
    seeds = np.zeros((3, 5, 100, 9))
    assert paired_difference_interval(seeds, first, resamples=100)["clusters"] == {
        "seeds": 3, "permutations": 5, "images": 100, "cells": 9
    }  # fmt: skip


@pytest.mark.parametrize(
    "first, second, kwargs, match",
    [
        (np.zeros((2, 3)), np.zeros((2, 3)), {}, "4-D"),
        (np.zeros((1, 1, 5, 9)), np.zeros((1, 1, 4, 9)), {}, "same canvases"),
        (np.zeros((2, 1, 5, 9)), np.zeros((3, 1, 5, 9)), {}, "broadcast"),
        (np.zeros((1, 1, 5, 9)), np.zeros((1, 1, 5, 9)), {"resamples": 10}, "resamples"),
    ],
)
def test_bootstrap_bad_arguments(first, second, kwargs, match):
    with pytest.raises(ValueError, match=match):
        paired_difference_interval(first, second, **kwargs)
