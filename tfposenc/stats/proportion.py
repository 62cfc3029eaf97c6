"""Intervals for a proportion: Wilson's score interval and the exact (Clopper-Pearson) one.

Null and error rate: the interval covers the true proportion with probability `level`
(Wilson: approximately, also at 0 and 100 %, where Wald's `p +- z sqrt(p (1 - p) / n)`
has zero width and covers nothing; exact: at least `level`). Independent trials only:
for canvases that share a test image or a cell, count clusters, not canvases.
"""

import numpy as np
from scipy import special, stats

from tfposenc.stats._checks import check_finite, check_level

METHODS = ("wilson", "exact")


def proportion_interval(successes, trials, level=0.95, method="wilson"):
    """`(low, high)`, fractions in [0, 1], of the proportion behind `successes` of `trials`.

    Vectorised: `successes` and `trials` broadcast. Wilson's interval accepts a
    non-integer count (e.g. an accuracy averaged over permutations, times `trials`).

    Args:
        successes: number(s) in [0, trials].
        trials: number(s) > 0.
        level: float in (0, 1), the two-sided coverage. Defaults to `0.95`.
        method: `"wilson"` (score interval, no continuity correction, as
            `scipy.stats.binomtest(...).proportion_ci(method="wilson")`) or `"exact"`
            (Clopper-Pearson, from beta quantiles). Defaults to `"wilson"`.

    Example:
    >>> proportion_interval(180, 180)  # doctest: +ELLIPSIS
    (0.979..., 1.0)
    """
    level = check_level(level)
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}. Received: method={method!r}")
    x, n = check_finite(successes, "successes"), check_finite(trials, "trials")
    if np.any(n <= 0):
        raise ValueError(f"`trials` must be > 0. Received: trials={trials!r}")
    if np.any(x < 0) or np.any(x > n):
        raise ValueError(
            f"`successes` must be in [0, trials]. Received: successes={successes!r}, "
            f"trials={trials!r}"
        )
    alpha = (1 - level) / 2
    if method == "wilson":
        z = special.ndtri(1 - alpha)
        p = x / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        low, high = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
    else:
        with np.errstate(invalid="ignore"):
            low = np.where(x > 0, stats.beta.ppf(alpha, x, n - x + 1), 0.0)
            high = np.where(x < n, stats.beta.ppf(1 - alpha, x + 1, n - x), 1.0)
    if np.ndim(low) == 0:
        return float(low), float(high)
    return low, high


def proportion_variance(proportion, trials, level=0.95):
    """The variance a Wilson interval implies, `(half-width / z)^2` (fraction^2): a
    binomial variance that stays above zero at 0 and 100 %, for adding to other parts."""
    level = check_level(level)
    p = np.clip(check_finite(proportion, "proportion"), 0.0, 1.0)
    low, high = proportion_interval(p * trials, trials, level)
    z = special.ndtri(1 - (1 - level) / 2)
    return ((np.asarray(high) - np.asarray(low)) / (2 * z)) ** 2


__all__ = ["proportion_interval", "proportion_variance"]
