"""Each rule's error rates, simulated (vectorised): under its null, "shown" at most 5 %
of at least 2,000 runs; under a declared effect, "shown" at least 80 %."""

import numpy as np
import pytest

from tfposenc.stats import beyond_random, equivalence_test, paired_difference_interval

RUNS = 20000


def rate(verdicts, verdict="shown"):
    return float(np.mean(np.asarray(verdicts) == verdict))


@pytest.mark.parametrize("draws", [5, 19, 39, 60])
def test_beyond_random_null_and_power(draws):
    rng = np.random.default_rng(draws)
    random_values = rng.normal(0.8, 0.02, size=(RUNS, draws))
    null = rng.normal(0.8, 0.02, size=RUNS)  # the ranked set is one more random set
    assert rate(beyond_random(null, random_values)["verdict"]) <= 0.05
    assert rate(beyond_random(null, random_values)["verdict"], "not shown") <= 0.05
    effect = rng.normal(0.8 - 4 * 0.02, 0.02, size=RUNS)  # 4 SD below random
    power = rate(beyond_random(effect, random_values)["verdict"])
    assert power >= (0.8 if draws >= 19 else 0.5)


def test_the_old_population_sd_rule_fails_the_null_the_new_one_passes():
    rng = np.random.default_rng(5)
    random_values = rng.normal(0.0, 1.0, size=(RUNS, 5))
    null = rng.normal(0.0, 1.0, size=RUNS)
    old = null - random_values.mean(1) < -np.maximum(random_values.std(1), 0.005)
    assert 0.2 < old.mean() < 0.26  # the 23 %
    assert rate(beyond_random(null, random_values)["verdict"]) <= 0.03


def test_the_rank_test_is_exact_for_skewed_draws():
    rng = np.random.default_rng(6)
    random_values = rng.exponential(size=(RUNS, 39))
    null = rng.exponential(size=RUNS)
    found = beyond_random(null, random_values, method="rank")
    assert rate(found["verdict"]) == pytest.approx(1 / 40, abs=0.004)  # exactly 1/40
    found = beyond_random(null, random_values, alternative="greater", method="rank")
    assert rate(found["verdict"]) <= 0.03


@pytest.mark.parametrize("df", [2, 8, np.inf])
def test_equivalence_null_at_the_margin_and_power_at_zero(df):
    rng = np.random.default_rng(7)
    margin = 5.0
    se = 1.25 if df > 2 else 0.6  # 2 df (3 seeds): t = 4.3, so power needs a small SE
    scale = np.sqrt(rng.chisquare(df, RUNS) / df) if np.isfinite(df) else np.ones(RUNS)
    for truth in (margin, -margin):  # the null's edge: the hardest case for TOST
        estimate = rng.normal(truth, se, RUNS)
        assert rate(equivalence_test(estimate, se * scale, margin, df)["verdict"]) <= 0.05
    estimate = rng.normal(0.0, se, RUNS)  # equal accuracies with small noise
    power = rate(equivalence_test(estimate, se * scale, margin, df)["verdict"])
    assert power >= 0.8


def test_overlap_rule_shows_tracking_by_failing_to_reject_tost_does_not():
    """The old rule ("intervals overlap and B's point inside A's interval") grows more
    "shown" the wider the intervals; TOST grows more inconclusive."""
    rng = np.random.default_rng(8)
    truth, se = 12.0, 4.0  # a real 12-point gap, measured noisily
    a, b = rng.normal(30.0, se, RUNS), rng.normal(30.0 + truth, se, RUNS)
    old = np.abs(a - b) <= 1.96 * se
    assert old.mean() > 0.1
    found = equivalence_test(a - b, se * np.sqrt(2), 5.0)["verdict"]
    assert rate(found) <= 0.001


def clustered(rng, shape, cell_sd, image_sd, shift=0.0):
    """Paired per-canvas differences with cell and image effects (zero mean + shift)."""
    runs, images, cells = shape
    return (
        shift
        + rng.normal(0, cell_sd, (runs, 1, 1, 1, cells))
        + rng.normal(0, image_sd, (runs, 1, 1, images, 1))
        + rng.normal(0, 0.3, (runs, 1, 1, images, cells))
    )


def test_clustered_bootstrap_null_and_power():
    rng = np.random.default_rng(9)
    runs = 2000
    null = clustered(rng, (runs, 30, 9), cell_sd=0.15, image_sd=0.1)
    zero = np.zeros((1, 1, 30, 9))
    verdicts = [
        paired_difference_interval(d, zero, resamples=200, seed=i)["verdict"]
        for i, d in enumerate(null)
    ]
    assert rate(verdicts) <= 0.05
    # A binomial-style interval over the 270 canvases as if independent is fooled by
    # the cell clusters.
    flat = null.reshape(runs, -1)
    naive = flat.mean(1) + 1.96 * flat.std(1, ddof=1) / np.sqrt(flat.shape[1]) < 0
    assert naive.mean() > 0.1
    effect = clustered(rng, (runs // 4, 30, 9), cell_sd=0.15, image_sd=0.1, shift=-0.3)
    verdicts = [
        paired_difference_interval(d, zero, resamples=200, seed=i)["verdict"]
        for i, d in enumerate(effect)
    ]
    assert rate(verdicts) >= 0.8
