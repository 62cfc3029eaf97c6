import numpy as np
import pytest
from scipy import stats

from tfposenc.stats import combined_interval, proportion_interval, proportion_variance


@pytest.mark.parametrize("method", ["wilson", "exact"])
@pytest.mark.parametrize("k, n", [(0, 20), (3, 20), (90, 180), (179, 180), (180, 180)])
def test_matches_scipy_binomtest(method, k, n):
    ci = stats.binomtest(k, n).proportion_ci(0.95, method=method)
    low, high = proportion_interval(k, n, 0.95, method)
    assert (low, high) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_vectorised_and_not_zero_width_at_100_percent():
    low, high = proportion_interval(np.array([0, 180]), 180)
    assert low[0] == 0 and high[0] > 0.015 and low[1] < 0.985 and high[1] == 1
    # Wald's variance is 0 at 100 %; the Wilson one is (half-width / 1.96)^2 > 0.
    assert proportion_variance(1.0, 180) == pytest.approx(((1 - low[1]) / 2 / 1.959964) ** 2)


def test_wilson_covers_at_its_level_where_wald_does_not():
    rng = np.random.default_rng(0)
    n, p = 40, 0.97
    k = rng.binomial(n, p, size=20000)
    low, high = proportion_interval(k, n)
    assert np.mean((low <= p) & (p <= high)) >= 0.93
    half = 1.96 * np.sqrt(k / n * (1 - k / n) / n)
    assert np.mean((k / n - half <= p) & (p <= k / n + half)) < 0.8  # Wald


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(successes=5, trials=0), "trials"),
        (dict(successes=5, trials=4), "successes"),
        (dict(successes=1, trials=4, level=1.0), "level"),
        (dict(successes=1, trials=4, method="wald"), "method"),
        (dict(successes=float("nan"), trials=4), "successes"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        proportion_interval(**kwargs)


def test_combined_interval_welch_satterthwaite_by_hand():
    parts = [(4.0, 2), (1.0, np.inf), (2.0, 8)]
    df = 7.0**2 / (16 / 2 + 4 / 8)
    low, high, found = combined_interval(10.0, parts)
    assert found == pytest.approx(df)
    assert high - 10 == pytest.approx(stats.t.ppf(0.975, df) * np.sqrt(7.0))
    assert combined_interval(0.0, [(1.0, np.inf)])[1] == pytest.approx(1.959964, abs=1e-6)
    with pytest.raises(ValueError, match="parts"):
        combined_interval(0.0, [(-1.0, 3)])


def test_combined_interval_with_three_seeds_covers_at_its_level():
    rng = np.random.default_rng(1)
    seeds = rng.normal(0.0, 5.0, size=(4000, 3))
    covered = 0
    for row in seeds:
        low, high, _ = combined_interval(row.mean(), [(row.var(ddof=1) / 3, 2)])
        covered += low <= 0 <= high
    assert 0.935 <= covered / 4000 <= 0.965  # t with 2 df: z would cover ~0.83
