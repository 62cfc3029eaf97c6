"""Is one value beyond what random draws of its counterpart predict?

The position attack removes the top-ranked channels once and random channel sets
several times. Null: the ranked value is one more draw from the distribution of the
random values (exchangeable with them). `"shown"` when the ranked value lies beyond
the two-sided `level` prediction interval on the `alternative` side (so under the null
at most `(1 - level) / 2`, 2.5 % at the default, of runs are wrongly "shown"), `"not
shown"` when it lies beyond it on the other side, `"inconclusive"` inside.

Two tests, `method="auto"` picks:

- `"rank"`, exact and free of any assumption on the distribution: `p = (1 + #{draws
  at or beyond the ranked value}) / (n + 1)` (ties count against the claim). Its
  smallest p is `1 / (n + 1)`, so it can reach `(1 - level) / 2` only with `n >=
  2 / (1 - level) - 1` draws (39 at 0.95); `"auto"` uses it from there.
- `"prediction"`: `t = (ranked - mean) / (sd * sqrt(1 + 1 / n))`, the sample SD
  (ddof 1), Student's t with `n - 1` degrees of freedom: exact when the draws are
  normal. With no spread in the draws (sd 0) nothing can be judged: inconclusive.

The rule it replaces, "ranked below random by more than the population SD of 5
draws", shows a null effect 23 % of the time.
"""

import math

import numpy as np
from scipy import stats

from tfposenc.stats._checks import (
    check_alternative,
    check_finite,
    check_level,
    verdict_of,
)

METHODS = ("auto", "rank", "prediction")


def beyond_random(ranked, random_values, alternative="less", level=0.95, method="auto"):
    """Tests `ranked` against the draws `random_values` of its random counterpart.

    Vectorised: `ranked` of shape `(...)` with `random_values` of shape `(..., n)` gives
    arrays of the same leading shape in the result.

    Args:
        ranked: float, the value of the ranked selection (e.g. accuracy after removal).
        random_values: floats, the same measure for `n >= 2` random draws.
        alternative: `"less"` (shown when `ranked` lies below what the draws predict,
            e.g. ranked removal hurts more) or `"greater"`. Defaults to `"less"`.
        level: float in (0, 1), the two-sided prediction level. Defaults to `0.95`.
        method: `"auto"`, `"rank"` or `"prediction"` (see the module docstring).
            Defaults to `"auto"`.

    Returns:
        A dict: `verdict` (`"shown"`, `"not shown"` or `"inconclusive"`), `p_value`
        (one-sided, in the direction of `alternative`; NaN where sd is 0), `method`,
        `draws` (n), `mean`, `sd` (ddof 1), `bound` (the prediction interval's end on
        the `alternative` side; NaN for the rank test), `level`, `alternative`.

    Example:
    >>> beyond_random(0.30, [0.80, 0.78, 0.83, 0.79, 0.81])["verdict"]
    'shown'
    """
    alternative = check_alternative(alternative)
    level = check_level(level)
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}. Received: method={method!r}")
    x = check_finite(ranked, "ranked")
    draws = check_finite(random_values, "random_values", min_ndim=1)
    n = draws.shape[-1]
    if n < 2 or draws.shape[:-1] != x.shape:
        raise ValueError(
            "`random_values` must hold >= 2 draws per ranked value (shape `ranked.shape + "
            f"(n,)`). Received: random_values of shape {draws.shape} for ranked of shape "
            f"{x.shape}"
        )
    alpha = (1 - level) / 2
    if method == "auto":
        method = "rank" if 1 / (n + 1) <= alpha + 1e-12 else "prediction"
    flip = 1.0 if alternative == "less" else -1.0  # "greater" is "less" of the negatives
    x_, draws_ = flip * x, flip * draws
    mean, sd = draws.mean(axis=-1), draws.std(axis=-1, ddof=1)
    scale = sd * math.sqrt(1 + 1 / n)
    if method == "rank":
        p = (1 + np.sum(draws_ <= x_[..., None], axis=-1)) / (n + 1)
        p_other = (1 + np.sum(draws_ >= x_[..., None], axis=-1)) / (n + 1)
        bound = np.full(x.shape, np.nan)
    else:
        spread = sd > 0
        t = (x_ - flip * mean) / np.where(spread, scale, 1.0)
        p = np.where(spread, stats.t.cdf(t, n - 1), np.nan)
        p_other = np.where(spread, stats.t.sf(t, n - 1), np.nan)
        bound = mean - flip * stats.t.ppf(1 - alpha, n - 1) * scale
    with np.errstate(invalid="ignore"):
        verdict = verdict_of(p <= alpha + 1e-12, p_other <= alpha + 1e-12)
    scalar = x.ndim == 0
    return {
        "verdict": verdict,
        "p_value": float(p) if scalar else p,
        "method": method,
        "draws": n,
        "mean": float(mean) if scalar else mean,
        "sd": float(sd) if scalar else sd,
        "bound": float(bound) if scalar else bound,
        "level": level,
        "alternative": alternative,
    }


__all__ = ["beyond_random"]
