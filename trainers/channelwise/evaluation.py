"""Scoring the channel-wise networks, PermuteNet under many permutations.

PermuteNet draws one permutation per call; scored through `predict` in batches, a test
set sees only a handful of them (180 images in batches of 256: 7 for the whole k = 3
test), and one permutation moves the accuracy by several points. The backbone is
deterministic in inference, so the pooled features of the test canvases are computed
once and PermuteNet's read-out (`dense(z[perm])`, exactly what its `ChannelShuffle`
and dense layer do in one call) is applied to the whole test set under each of
`permutations` distinct random permutations, in numpy. The accuracy is the mean over
permutations, `permutation_std` the standard deviation of the per-permutation accuracy,
and `expected_logit_accuracy` a diagnostic: the accuracy of the expected logits
(`PermuteNet.expected_logits`, the weights replaced by their row means: a SumNet).
Networks without a shuffle are scored once (`permutations` 0, `permutation_std` 0).
"""

import numpy as np

from trainers.channelwise.config import SHUFFLED


def draw_permutations(channels, count, seed):
    """`(count, channels)` distinct permutations of `range(channels)` (fewer when
    `channels!` is smaller), from a numpy generator seeded with `seed`."""
    rng = np.random.default_rng(seed)
    limit = int(np.prod(np.arange(1, channels + 1, dtype=float)))
    count = min(int(count), limit)
    drawn, seen = [], set()
    while len(drawn) < count:
        permutation = rng.permutation(channels)
        key = permutation.tobytes()
        if key not in seen:
            seen.add(key)
            drawn.append(permutation)
    return np.stack(drawn)


def permuted_logits(pooled, kernel, bias, permutation):
    """PermuteNet's logits for `pooled` (`(n, channels)`) under one pinned permutation:
    `pooled[:, permutation] @ kernel + bias` (ChannelShuffle: `out[c] = in[perm[c]]`)."""
    return pooled[:, permutation] @ kernel + bias


def expected_logits(pooled, kernel, bias):
    """The logits averaged over every permutation: `sum(pooled) * kernel.mean(0) + bias`."""
    return pooled.sum(axis=-1, keepdims=True) * kernel.mean(axis=0, keepdims=True) + bias


def collect(model, dataset, pooled=False):
    """`(outputs, targets, cells)` numpy arrays over a test set of `(canvas, cell)` or
    `(canvas, class, cell)` batches: the logits (or pooled features when `pooled`)."""
    from tfposenc.metrics.traced import traced

    run = traced(model)
    outputs, targets, cells = [], [], []
    for batch in dataset:
        canvas, target, cell = batch if len(batch) == 3 else (*batch, batch[1])
        outputs.append(np.asarray(run.pooled_features(canvas) if pooled else run(canvas)))
        targets.append(np.asarray(target))
        cells.append(np.asarray(cell))
    return np.concatenate(outputs), np.concatenate(targets), np.concatenate(cells)


def summarise(hits, cells, grid_size):
    """`accuracy`, `examples`, `per_cell_accuracy`, `permutations`, `permutation_std` from
    `hits` (`(permutations, n)` booleans; one row for a network without a shuffle)."""
    hits = np.asarray(hits, bool)
    per_permutation = 100.0 * hits.mean(axis=1)
    correct = np.zeros(grid_size * grid_size)
    seen = np.zeros(grid_size * grid_size)
    np.add.at(correct, cells, hits.mean(axis=0))
    np.add.at(seen, cells, 1)
    per_cell = [None if n == 0 else round(100.0 * c / n, 2) for c, n in zip(correct, seen)]
    yield "accuracy", float(per_permutation.mean())
    yield "examples", int(hits.shape[1])
    yield (
        "per_cell_accuracy",
        [per_cell[r * grid_size : (r + 1) * grid_size] for r in range(grid_size)],
    )
    yield "permutation_std", float(per_permutation.std(ddof=1)) if len(hits) > 1 else 0.0


def score(model, dataset, network, grid_size, permutations, seed):
    """Yields the record's values (see the module docstring) for `network`'s `model`."""
    if network not in SHUFFLED:
        logits, targets, cells = collect(model, dataset)
        yield from summarise((np.argmax(logits, -1) == targets)[None], cells, grid_size)
        yield "permutations", 0
        return
    pooled, targets, cells = collect(model, dataset, pooled=True)
    kernel, bias = (np.asarray(w, "float32") for w in model.dense.get_weights())
    drawn = draw_permutations(pooled.shape[1], permutations, seed)
    hits = [np.argmax(permuted_logits(pooled, kernel, bias, p), -1) == targets for p in drawn]
    yield from summarise(hits, cells, grid_size)
    yield "permutations", len(drawn)
    expected = np.argmax(expected_logits(pooled, kernel, bias), -1) == targets
    yield "expected_logit_accuracy", float(100.0 * expected.mean())


def validation_accuracy(model, dataset, network, permutations, seed):
    """`(mean accuracy %, std over permutations)` on `(canvas, label)` batches, scored as
    `score` does (one pass for a network without a shuffle)."""
    if network not in SHUFFLED:
        logits, targets, _ = collect(model, dataset)
        return float(100.0 * np.mean(np.argmax(logits, -1) == targets)), 0.0
    pooled, targets, _ = collect(model, dataset, pooled=True)
    kernel, bias = (np.asarray(w, "float32") for w in model.dense.get_weights())
    drawn = draw_permutations(pooled.shape[1], permutations, seed)
    accuracy = [
        100.0 * np.mean(np.argmax(permuted_logits(pooled, kernel, bias, p), -1) == targets)
        for p in drawn
    ]
    return float(np.mean(accuracy)), float(np.std(accuracy, ddof=1)) if len(drawn) > 1 else 0.0


__all__ = [
    "collect",
    "draw_permutations",
    "expected_logits",
    "permuted_logits",
    "score",
    "summarise",
    "validation_accuracy",
]
