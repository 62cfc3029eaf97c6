"""The channel-wise experiment's records: seeds aggregated, the poster's numbers.

`aggregate` turns the runner's per-seed records into one record per combination
(`trainers.framework.seeds.aggregate`, every experiment's): the mean and sample standard
deviation of the accuracy over seeds, then the channel-wise extras: the per-cell accuracy
averaged, PermuteNet's `permutations` per test pass, `permutation_std` (root mean square
over seeds) and `expected_logit_accuracy` (mean), what it trained with (`steps`,
`learning_rate`, `beta_1`, `batch_size`, ...), and the per-seed records under `seeds`. Nothing here imports TensorFlow.
"""

import dataclasses
import math
import statistics

from trainers.channelwise.config import Combination
from trainers.framework import seeds

# The poster's Table 1 (ResNet-18 on CIFAR-10, 20 epochs, width 64, batch 48).
POSTER = {
    ("zero", "gapnet"): {"location": (100, 100, 100), "class": (82.6, 82.4, 82.1)},
    ("zero", "permutenet"): {"location": (78.8, 37.8, 21.4), "class": (73.6, 72.2, 69.9)},
    ("reflect", "gapnet"): {"location": (100, 100, 100), "class": (83.8, 83.4, 82.9)},
    ("reflect", "permutenet"): {"location": (78.3, 36.3, 23.2), "class": (71.1, 71.4, 65.7)},
    ("replicate", "gapnet"): {"location": (100, 100, 100), "class": (83.1, 82.9, 82.8)},
    ("replicate", "permutenet"): {"location": (78.3, 40.1, 23.6), "class": (72.0, 71.5, 71.4)},
}
POSTER_GRIDS = (3, 5, 7)
# What a combination trained with (the same for every seed), kept in its record.
TRAINED_WITH = ("epochs", "steps", "batch_size", "optimizer", "learning_rate", "beta_1")


def _mean_grid(grids):
    grids = [g for g in grids if g]
    if not grids:
        return None
    cells = zip(*[[v for row in g for v in row] for g in grids], strict=True)
    flat = [
        None if all(v is None for v in c) else statistics.fmean(v for v in c if v is not None)
        for c in cells
    ]
    k = len(grids[0])
    return [
        [None if v is None else round(v, 2) for v in flat[r * k : (r + 1) * k]] for r in range(k)
    ]


def aggregate(per_seed):
    """One record per combination (its `group`) over the per-seed records, in first-seen
    order (`trainers.framework.seeds.aggregate`): `accuracy` is the mean over seeds,
    `accuracy_std` the sample standard deviation (0 for one seed), `seeds` the per-seed
    records; then the channel-wise extras (module docstring)."""
    names = [f.name for f in dataclasses.fields(Combination)]
    records = seeds.aggregate(
        per_seed,
        ("accuracy", "expected_logit_accuracy"),
        group=lambda r: Combination(**{n: r[n] for n in names}).group,
        keep=False,
    )
    for record in records:
        runs, first = record["seeds"], record["seeds"][0]
        record.update(
            {
                "network": first["network"],
                "task": first["task"],
                "grid_size": first["grid_size"],
                "padding_mode": first["padding_mode"],
                "downsampling": first.get("downsampling", "stride"),
                "chance": first["chance"],
                "examples": first.get("examples"),
                "feature_map_size": first.get("feature_map_size"),
                **{key: first.get(key) for key in TRAINED_WITH},
                "per_cell_accuracy": _mean_grid([r.get("per_cell_accuracy") for r in runs]),
                "per_cell_examples": first.get("per_cell_examples"),
                "permutations": first.get("permutations", 0),
                # the root mean square over seeds of the per-seed spread over permutations
                "permutation_std": math.sqrt(
                    statistics.fmean((r.get("permutation_std") or 0.0) ** 2 for r in runs)
                ),
                "expected_logit_accuracy": record.get("expected_logit_accuracy"),
                "epochs_trained": first["epochs_trained"],
                "train_seconds": round(sum(r["train_seconds"] for r in runs), 1),
                "test_seconds": round(sum(r["test_seconds"] for r in runs), 1),
            }
        )
    return records


def poster_value(config, result):
    """The poster's number for a result of a matching run (CIFAR-10, ResNet-18), or None."""
    if config.dataset != "cifar10" or config.backbone != "resnet18":
        return None
    row = POSTER.get((result["padding_mode"], result["network"]))
    if row is None or result["grid_size"] not in POSTER_GRIDS or result["downsampling"] != "stride":
        return None
    return row[result["task"]][POSTER_GRIDS.index(result["grid_size"])]


__all__ = ["POSTER", "POSTER_GRIDS", "aggregate", "poster_value"]
