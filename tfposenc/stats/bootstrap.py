"""A paired difference and its interval by a clustered bootstrap.

Two selections (or networks) scored on the same canvases give values shaped `(seeds,
permutations, images, cells)`: every test image is placed in every cell, so canvases
share an image and canvases share a cell, and their errors cluster both ways. The
difference of the two means is resampled by whole clusters, the four axes at once and
independently (a crossed, "pigeonhole" bootstrap): seeds, permutations, test images
and cells are each drawn with replacement, and the paired difference is the mean over
the drawn combination. So the test-image term is not shrunk by seeds that share the
test images (an image is drawn once for every seed), and a cell that one selection
happens to get wrong counts as one cluster, not as `images` canvases.

Null and error rate: `"shown"` when the two-sided `level` percentile interval lies
wholly on the `alternative` side of zero (one-sided error about `(1 - level) / 2`;
crossed resampling double-counts the residual term, so the interval errs wide); with
few clusters on an axis (2 or 3 seeds) the bootstrap sees too little of that axis's
spread, which `evidence` should say.
"""

import numpy as np

from tfposenc.stats._checks import (
    check_alternative,
    check_finite,
    check_level,
    check_positive_int,
    verdict_of,
)

AXES = ("seeds", "permutations", "images", "cells")
_CHUNK = 64


def paired_difference_interval(
    first, second, level=0.95, resamples=2000, seed=0, alternative="less"
):
    """`mean(first) - mean(second)` on the same canvases, with its bootstrap interval.

    Args:
        first: array `(seeds, permutations, images, cells)` of per-canvas values (0/1
            hits, or per-canvas scores); an axis of size 1 broadcasts against `second`
            (e.g. one pass of a network without a shuffle).
        second: the same for the other selection; `images` and `cells` must match.
        level: float in (0, 1), the two-sided level of the interval. Defaults to `0.95`.
        resamples: int >= 100, bootstrap resamples. Defaults to `2000`.
        seed: int, seeds the resampling. Defaults to `0`.
        alternative: `"less"` (shown when the difference is below zero) or
            `"greater"`. Defaults to `"less"`.

    Returns:
        A dict: `verdict`, `difference`, `low`, `high`, `level`, `resamples` and
        `clusters` (`{axis: size}`, what each resample drew).
    """
    level = check_level(level)
    resamples = check_positive_int(resamples, "resamples", minimum=100)
    alternative = check_alternative(alternative)
    a = check_finite(first, "first")
    b = check_finite(second, "second")
    for name, array in (("first", a), ("second", b)):
        if array.ndim != 4:
            raise ValueError(
                f"`{name}` must be 4-D {AXES}. Received: {name} of shape {array.shape}"
            )
    if a.shape[2:] != b.shape[2:]:
        raise ValueError(
            "`first` and `second` must be scored on the same canvases (images, cells). "
            f"Received: shapes {a.shape} and {b.shape}"
        )
    try:
        difference = a - b
    except ValueError:
        raise ValueError(
            "`first` and `second` must broadcast over seeds and permutations. "
            f"Received: shapes {a.shape} and {b.shape}"
        ) from None
    rng = np.random.default_rng(seed)
    estimate = float(difference.mean())
    sizes = difference.shape
    statistics = []
    for start in range(0, resamples, _CHUNK):
        count = min(_CHUNK, resamples - start)
        weights = [
            rng.multinomial(n, np.full(n, 1.0 / n), size=count) / n
            if n > 1
            else np.ones((count, 1))
            for n in sizes
        ]
        statistics.append(np.einsum("bs,bp,bi,bc,spic->b", *weights, difference, optimize="greedy"))
    statistics = np.concatenate(statistics)
    alpha = (1 - level) / 2
    low, high = (float(v) for v in np.quantile(statistics, [alpha, 1 - alpha]))
    below, above = high < 0, low > 0
    shown, not_shown = (below, above) if alternative == "less" else (above, below)
    return {
        "verdict": verdict_of(shown, not_shown),
        "difference": estimate,
        "low": low,
        "high": high,
        "level": level,
        "resamples": resamples,
        "clusters": dict(zip(AXES, sizes, strict=True)),
    }


__all__ = ["AXES", "paired_difference_interval"]
