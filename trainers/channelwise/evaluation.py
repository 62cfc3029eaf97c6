"""Scoring the channel-wise networks, PermuteNet under many permutations.

PermuteNet draws one permutation per call; scored through `predict` in batches, a test
set sees only a handful of them (180 images in batches of 256: 7 for the whole k = 3
test), and one permutation moves the accuracy by several points. The backbone is
deterministic in inference, so the pooled features of the test canvases are computed
once and PermuteNet's read-out (`dense(z[perm])`, exactly what its `ChannelShuffle`
and dense layer do in one call: `tfposenc.models.permute_net.permuted_logits`) is
applied to the whole test set under each of `permutations` distinct random permutations. The accuracy is the mean over
permutations, `permutation_std` the standard deviation of the per-permutation accuracy,
and `expected_logit_accuracy` a diagnostic: the accuracy of the expected logits
(`tfposenc.models.permute_net.expected_logits`, the weights replaced by their row
means: a SumNet).
Networks without a shuffle are scored once (`permutations` 0, `permutation_std` 0).

Location with more cells than `GROUPED_LABELS` (k >= 4) is also scored with the cells
grouped into that many labels (`trainers.channelwise.cells`): `grouped_accuracy`,
`grouped_chance`, `grouped_labels`, `per_cell_grouped_accuracy` and
`grouped_permutation_std`, what claim (a) compares with the 10 image classes.
"""

import math

import keras
import numpy as np

from tfposenc.metrics.accuracy import top1_hits
from tfposenc.metrics.traced import traced
from tfposenc.models.permute_net import expected_logits, permuted_logits
from trainers.channelwise.cells import GROUPED_LABELS, grouped_chance, grouped_hits
from trainers.channelwise.config import SHUFFLED


def draw_permutations(channels, count, seed):
    """`(count, channels)` distinct permutations of `range(channels)` (fewer when
    `channels!` is smaller), from a numpy generator seeded with `seed`."""
    rng = np.random.default_rng(seed)
    count = int(count)
    if channels < 20:  # 20! > 2**61: beyond it every count asked for is reachable
        count = min(count, math.factorial(channels))
    drawn, seen = [], set()
    while len(drawn) < count:
        permutation = rng.permutation(channels)
        key = permutation.tobytes()
        if key not in seen:
            seen.add(key)
            drawn.append(permutation)
    return np.stack(drawn)


def readout(model):
    """PermuteNet's dense read-out as float32 numpy `(kernel, bias)`."""
    return tuple(keras.ops.convert_to_numpy(w).astype("float32") for w in model.dense.weights)


def permuted_predictions(pooled, kernel, bias, permutations):
    """`(permutations, n)` ints: `argmax(permuted_logits)` per permutation
    (`tfposenc.models.permute_net.permuted_logits`)."""
    return np.stack([
        np.argmax(keras.ops.convert_to_numpy(permuted_logits(pooled, kernel, bias, p)), -1)
        for p in permutations
    ])  # fmt: skip


def permuted_hits(pooled, kernel, bias, permutations, targets):
    """`(permutations, n)` booleans: `argmax(permuted_logits) == targets` per permutation."""
    return permuted_predictions(pooled, kernel, bias, permutations) == targets


def collect(model, dataset, pooled=False):
    """`(outputs, targets, cells)` numpy arrays over a test set of `(canvas, cell)` or
    `(canvas, class, cell)` batches: the logits (or pooled features when `pooled`)."""
    run = traced(model)
    outputs, targets, cells = [], [], []
    for batch in dataset:
        canvas, target, cell = batch if len(batch) == 3 else (*batch, batch[1])
        outputs.append(np.asarray(run.pooled_features(canvas) if pooled else run(canvas)))
        targets.append(np.asarray(target))
        cells.append(np.asarray(cell))
    return np.concatenate(outputs), np.concatenate(targets), np.concatenate(cells)


def summarise(hits, cells, grid_size):
    """`accuracy`, `examples`, `per_cell_accuracy`, `per_cell_examples` (the canvases
    scored in each cell: the clusters of the claims' intervals), `permutation_std` from
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
    yield "per_cell_examples", seen.astype(int).reshape(grid_size, grid_size).tolist()
    yield "permutation_std", float(per_permutation.std(ddof=1)) if len(hits) > 1 else 0.0


def grouped_values(predicted, cells, grid_size):
    """The grouped location values (module docstring) of `(permutations, n)` predicted
    cells against the true `cells`."""
    values = dict(summarise(grouped_hits(predicted, cells, grid_size), cells, grid_size))
    yield "grouped_accuracy", values["accuracy"]
    yield "grouped_chance", grouped_chance(grid_size, values["per_cell_examples"])
    yield "grouped_labels", int(min(GROUPED_LABELS, grid_size * grid_size))
    yield "per_cell_grouped_accuracy", values["per_cell_accuracy"]
    yield "grouped_permutation_std", values["permutation_std"]


def score(model, dataset, network, grid_size, permutations, seed):
    """Yields the record's values (see the module docstring) for `network`'s `model`; a
    dataset of `(canvas, cell)` batches is the location task."""
    spec = getattr(dataset, "element_spec", None)
    location = spec is not None and len(spec) == 2 and grid_size * grid_size > GROUPED_LABELS
    if network not in SHUFFLED:
        logits, targets, cells = collect(model, dataset)
        predicted = np.argmax(logits, -1)[None]
        yield from summarise(predicted == targets, cells, grid_size)
        yield "permutations", 0
        if location:
            yield from grouped_values(predicted, cells, grid_size)
        return
    pooled, targets, cells = collect(model, dataset, pooled=True)
    kernel, bias = readout(model)
    drawn = draw_permutations(pooled.shape[1], permutations, seed)
    predicted = permuted_predictions(pooled, kernel, bias, drawn)
    yield from summarise(predicted == targets, cells, grid_size)
    yield "permutations", len(drawn)
    if location:
        yield from grouped_values(predicted, cells, grid_size)
    expected = expected_logits(pooled, kernel, bias)
    expected = top1_hits(keras.ops.convert_to_numpy(expected), targets)
    yield "expected_logit_accuracy", float(100.0 * expected.mean())


def validation_accuracy(model, dataset, network, permutations, seed):
    """`(mean accuracy %, std over permutations)` on `(canvas, label)` batches, scored as
    `score` does (one pass for a network without a shuffle)."""
    if network not in SHUFFLED:
        logits, targets, _ = collect(model, dataset)
        return float(100.0 * np.mean(top1_hits(logits, targets))), 0.0
    pooled, targets, _ = collect(model, dataset, pooled=True)
    drawn = draw_permutations(pooled.shape[1], permutations, seed)
    accuracy = 100.0 * permuted_hits(pooled, *readout(model), drawn, targets).mean(axis=1)
    return float(np.mean(accuracy)), float(np.std(accuracy, ddof=1)) if len(drawn) > 1 else 0.0


__all__ = [
    "collect",
    "draw_permutations",
    "expected_logits",
    "grouped_values",
    "permuted_hits",
    "permuted_predictions",
    "permuted_logits",
    "readout",
    "score",
    "summarise",
    "validation_accuracy",
]
