"""The variance of a grid accuracy whose canvases cluster by cell: cells resampled whole.

A grid experiment scores every test image in each of the k^2 cells, for every seed, so
its results are per-seed, per-cell hit counts `hits[s, c]` out of `examples[s, c]`
canvases. The canvases of one cell share it (a network that cannot reach cell c misses
all of them): they are one cluster, not `examples` independent trials. The accuracy's
sampling over cells is measured by resampling whole cells with replacement, one draw
of cells shared by every seed (each seed is scored on the same cells), and recomputing
the pooled accuracy `sum_sc v_c hits[s, c] / sum_sc v_c examples[s, c]` (`v_c`: how
often cell c was drawn). The variance of those replicates times `cells / (cells - 1)`
(the bootstrap's small-sample factor: unbiased for a mean of equal cells) is the cell
part, with `cells - 1` df. The within-cell (binomial) noise of each cell is already in
the spread between the cells, so the canvases are not resampled again within a cell.

Seeds, with two or more: the sample variance of the per-seed accuracies over `seeds`
(`seeds - 1` df), which is what resampling seeds gives times `seeds / (seeds - 1)`,
computed exactly (three seeds resampled give only ten distinct outcomes). The test
images are shared by every cell and every seed, so they are a crossed factor, not a
within-cell one: their part is added by the caller once, not shrunk by cells or seeds.

The resampled cells come from a numpy generator seeded with `seed`, drawn once per
(cells, resamples, seed) and reused, so the same records always get the same verdict.
Null and error rate: with the parts added by `combined_interval`, a 95% interval covers
the true accuracy about 95% of the time (simulated in `tests/stats/test_clustered.py`).
"""

import functools

import numpy as np

from tfposenc.stats._checks import check_finite, check_positive_int


@functools.lru_cache(maxsize=32)
def cell_draws(cells, resamples, seed):
    """`(resamples, cells)` read-only counts: how often each cell is drawn per resample."""
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(cells, np.full(cells, 1.0 / cells), size=resamples).astype("float64")
    draws.setflags(write=False)
    return draws


def clustered_parts(hits, examples, resamples=2000, seed=0):
    """`[(name, variance, df)]` of the pooled accuracy (a fraction; variance in
    fraction^2) behind per-seed, per-cell results: `"seeds"` when there are two seeds or
    more, `"cells"` when there are two cells or more (see the module docstring).

    Args:
        hits: array `(seeds, cells)` of hits per cell (may be fractional: a mean over
            permutations times the canvases).
        examples: array `(cells,)` or `(seeds, cells)` of canvases per cell, >= 0; a
            cell without canvases is left out.
        resamples: int >= 100, cell resamples. Defaults to `2000`.
        seed: int, seeds the resampling. Defaults to `0`.

    Returns:
        A list of `(name, variance, df)`.
    """
    resamples = check_positive_int(resamples, "resamples", minimum=100)
    hits = check_finite(hits, "hits")
    if hits.ndim != 2:
        raise ValueError(f"`hits` must be 2-D (seeds, cells). Received: shape {hits.shape}")
    try:
        examples = np.broadcast_to(check_finite(examples, "examples"), hits.shape)
    except ValueError:
        raise ValueError(
            f"`examples` must be (cells,) or (seeds, cells) as `hits` {hits.shape}. "
            f"Received: examples={examples!r}"
        ) from None
    if np.any(examples < 0) or np.any(hits < 0) or np.any(hits > examples + 1e-9):
        raise ValueError(
            f"`hits` must be in [0, examples]. Received: hits={hits!r}, examples={examples!r}"
        )
    keep = examples.sum(axis=0) > 0
    hits, examples = hits[:, keep], examples[:, keep]
    seeds, cells = hits.shape
    found = []
    if seeds > 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            per_seed = hits.sum(axis=1) / examples.sum(axis=1)
        per_seed = per_seed[np.isfinite(per_seed)]
        if per_seed.size > 1:
            found.append(
                ("seeds", float(np.var(per_seed, ddof=1)) / per_seed.size, per_seed.size - 1)
            )
    if cells > 1:
        draws = cell_draws(cells, resamples, int(seed))
        replicates = (draws @ hits.sum(axis=0)) / (draws @ examples.sum(axis=0))
        replicates = replicates[np.isfinite(replicates)]
        variance = float(np.var(replicates, ddof=1)) * cells / (cells - 1)
        found.append(("cells", variance, cells - 1))
    return found


__all__ = ["cell_draws", "clustered_parts"]
