"""`tfposenc.stats.clustered_parts`: cells resampled whole, against analytic oracles,
and the interval it makes covering at its level on simulated grid experiments."""

import numpy as np
import pytest

from tfposenc.stats import clustered_parts, combined_interval, proportion_variance
from tfposenc.stats.clustered import cell_draws


def by_name(found):
    return {name: (variance, df) for name, variance, df in found}


def test_equal_cells_give_the_analytic_variance_of_their_mean():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.2, 0.8, 9)
    found = by_name(clustered_parts((p * 180)[None], np.full(9, 180), resamples=20000))
    assert set(found) == {"cells"}
    assert found["cells"] == pytest.approx((np.var(p, ddof=1) / 9, 8), rel=0.03)


def test_unequal_cells_give_the_ratio_estimators_linearised_variance():
    """Pooled accuracy = sum hits / sum examples (a ratio): its cluster variance is
    `K / (K - 1) * sum_c (h_c - A n_c)^2 / N^2` (Taylor linearisation)."""
    rng = np.random.default_rng(1)
    examples = rng.integers(20, 200, 25).astype(float)
    hits = np.round(rng.uniform(0.0, 1.0, 25) * examples)
    pooled = hits.sum() / examples.sum()
    oracle = 25 / 24 * np.sum((hits - pooled * examples) ** 2) / examples.sum() ** 2
    found = by_name(clustered_parts(hits[None], examples, resamples=20000))
    assert found["cells"][0] == pytest.approx(oracle, rel=0.05)


def test_seeds_share_one_draw_of_cells_and_their_spread_is_exact():
    """Two seeds good at opposite cells, equal on average per cell: resampled together
    the cells do not vary (an independent draw per seed would); the seed part is the
    sample variance of the per-seed accuracies / seeds."""
    first = np.array([0.9, 0.1] * 4 + [0.5])
    hits = np.stack([first, 1.0 - first]) * 100
    found = by_name(clustered_parts(hits, np.full(9, 100)))
    assert found["cells"][0] == pytest.approx(0.0, abs=1e-20)
    per_seed = hits.sum(1) / 900
    assert found["seeds"] == pytest.approx((np.var(per_seed, ddof=1) / 2, 1))
    # Per-seed examples; a cell nobody saw is left out (8 cells: 7 df).
    examples = np.full((2, 9), 100.0)
    examples[:, 8] = 0
    hits[:, 8] = 0
    assert by_name(clustered_parts(hits, examples))["cells"][1] == 7


def test_the_same_records_get_the_same_parts():
    hits, examples = np.array([[30.0, 60.0, 45.0, 10.0]]), np.full(4, 100)
    assert clustered_parts(hits, examples, seed=3) == clustered_parts(hits, examples, seed=3)
    assert cell_draws(4, 100, 3) is cell_draws(4, 100, 3)
    assert not cell_draws(4, 100, 3).flags.writeable
    assert np.all(cell_draws(4, 100, 3).sum(1) == 4)


@pytest.mark.parametrize(
    "hits, examples, kwargs, match",
    [
        ([1.0, 2.0], [5, 5], {}, "must be 2-D"),
        ([[1.0, 2.0]], [5, 5, 5], {}, "`examples` must be"),
        ([[6.0, 2.0]], [5, 5], {}, "in \\[0, examples\\]"),
        ([[1.0, float("nan")]], [5, 5], {}, "finite"),
        ([[1.0, 2.0]], [5, 5], {"resamples": 10}, "`resamples` must be an int >= 100"),
    ],
)
def test_bad_arguments(hits, examples, kwargs, match):
    with pytest.raises(ValueError, match=match):
        clustered_parts(hits, examples, **kwargs)


def simulate(rng, runs, seeds, images, cells, mean, cell_sd, seed_sd, image_sd):
    """`(runs, seeds, cells)` hits of grid experiments: every image in every cell for
    every seed, P(hit) = mean + cell + seed + image effects (crossed, Gaussian)."""
    shape = (runs, seeds, images, cells)
    p = (
        mean
        + rng.normal(0, cell_sd, (runs, 1, 1, cells))
        + rng.normal(0, seed_sd, (runs, seeds, 1, 1))
        + rng.normal(0, image_sd, (runs, 1, images, 1))
    )
    return (rng.random(shape) < np.clip(p, 0, 1)).sum(axis=2).astype(float)


@pytest.mark.parametrize("seeds, seed_sd", [(1, 0.0), (3, 0.03)])
def test_the_interval_covers_at_its_level_where_a_binomial_over_canvases_does_not(seeds, seed_sd):
    """2,000 simulated runs (100 images x 9 cells, cells and images crossed): the 95%
    interval from the seed and cell parts plus the images' Wilson part (not divided by
    the seeds or cells) misses the true mean at most 2.5% + 1% on each side; the
    binomial over the 900 canvases per seed misses it far more often."""
    rng = np.random.default_rng(5)
    runs, images, mean = 2000, 100, 0.5
    hits = simulate(rng, runs, seeds, images, 9, mean, 0.12, seed_sd, 0.1)
    below = above = naive = 0
    for h in hits:
        accuracy = h.sum() / (seeds * images * 9)
        found = clustered_parts(h, np.full(9, images))
        found.append(("images", float(proportion_variance(accuracy, images)), np.inf))
        low, high, _ = combined_interval(accuracy, [(v, df) for _, v, df in found])
        below, above = below + (high < mean), above + (low > mean)
        half = 1.96 * np.sqrt(accuracy * (1 - accuracy) / (seeds * images * 9))
        naive += abs(accuracy - mean) > half
    assert below / runs <= 0.035 and above / runs <= 0.035
    assert naive / runs > 0.25
