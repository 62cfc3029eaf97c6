"""An interval from independent variance parts, each with its degrees of freedom.

`value +- t(df) * sqrt(sum of variances)`, `df` by Welch-Satterthwaite,
`(sum v)^2 / sum(v^2 / df)`: a part estimated from 3 seeds (2 df) widens the interval
as Student's t says, a binomial part (infinite df) does not. Null and error rate: the
interval covers the true value with probability about `level` when the parts are
independent and each is unbiased (the approximation is Satterthwaite's).
"""

import math

from scipy import special

from tfposenc.stats._checks import check_level


def combined_interval(value, parts, level=0.95):
    """`(low, high, df)` of `value` given `parts`, a list of `(variance, df)` (df > 0 or
    `math.inf`). Zero-variance parts add nothing."""
    level = check_level(level)
    parts = list(parts)
    for variance, df in parts:
        if not variance >= 0 or not df > 0:
            raise ValueError(
                f"`parts` must be (variance >= 0, df > 0) pairs. Received: parts={parts!r}"
            )
    total = sum(v for v, _ in parts)
    denominator = sum(v * v / df for v, df in parts if v > 0 and math.isfinite(df))
    df = total * total / denominator if denominator > 0 else math.inf
    p = 1 - (1 - level) / 2
    q = float(special.ndtri(p) if math.isinf(df) else special.stdtrit(df, p))
    half = q * math.sqrt(total)
    return value - half, value + half, df


__all__ = ["combined_interval"]
