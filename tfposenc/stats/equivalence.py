"""Equivalence within a declared margin: two one-sided tests (TOST).

"A tracks B" is a claim that their difference is small, so its null is the opposite:
`|difference| >= margin`. Each one-sided test runs at `(1 - level) / 2` (2.5 % at the
default), which is the same as asking the two-sided `level` interval of the difference
to lie inside `(-margin, margin)`: `"shown"` then, and under the null at most
`(1 - level) / 2` of runs are wrongly "shown" (the size of TOST is that of its one-sided
tests). `"not shown"` when the interval lies wholly outside the margin (a difference
larger than the margin is shown), `"inconclusive"` otherwise. A wide interval never
helps: failing to find a difference is not equivalence.
"""

import numpy as np
from scipy import stats

from tfposenc.stats._checks import check_finite, check_level, verdict_of


def equivalence_test(difference, standard_error, margin, df=np.inf, level=0.95):
    """TOST of `|true difference| < margin` from an estimate and its standard error.

    Vectorised over `difference`, `standard_error` and `df` (broadcast).

    Args:
        difference: float, the estimated difference (e.g. accuracy points).
        standard_error: float > 0, its standard error.
        margin: float > 0, the declared equivalence margin, in the same unit.
        df: float > 0 or `inf`, the degrees of freedom of the standard error (Student's
            t; infinite: normal). Defaults to `inf`.
        level: float in (0, 1), the two-sided level of the interval. Defaults to `0.95`.

    Returns:
        A dict: `verdict`, `p_value` (the larger of the two one-sided p values),
        `difference`, `low`, `high` (the `level` interval), `margin`, `level`.

    Example:
    >>> equivalence_test(0.5, 1.0, margin=5.0)["verdict"]
    'shown'
    """
    level = check_level(level)
    d = check_finite(difference, "difference")
    se = check_finite(standard_error, "standard_error")
    df = np.asarray(df, dtype="float64")
    if np.any(se <= 0):
        raise ValueError(
            f"`standard_error` must be > 0. Received: standard_error={standard_error!r}"
        )
    if not np.isfinite(margin) or margin <= 0:
        raise ValueError(f"`margin` must be a finite number > 0. Received: margin={margin!r}")
    if np.any(np.isnan(df)) or np.any(df <= 0):
        raise ValueError(f"`df` must be > 0 (or inf). Received: df={df!r}")
    alpha = (1 - level) / 2
    q = stats.t.ppf(1 - alpha, df)
    low, high = d - q * se, d + q * se
    p = np.maximum(stats.t.sf((d + margin) / se, df), stats.t.cdf((d - margin) / se, df))
    verdict = verdict_of((low > -margin) & (high < margin), (low >= margin) | (high <= -margin))
    scalar = np.ndim(p) == 0
    out = {"p_value": p, "difference": d, "low": low, "high": high}
    if scalar:
        out = {k: float(v) for k, v in out.items()}
    return {"verdict": verdict, **out, "margin": float(margin), "level": level}


__all__ = ["equivalence_test"]
