"""Location at fair label cardinality (`trainers.channelwise.cells`: cells grouped into
at most 10 labels), claim (a) judged with it at k = 5, and the claims' intervals from
each seed's per-cell results (`claims.cell_results`)."""

import numpy as np
import pytest

from tests.trainers.channelwise.test_claims_rules import (
    BUILT,
    CHANCE,
    make,
    rates,
    simulate_runs,
    untrained_records,
    verdicts,
)
from trainers.channelwise import cells, claims

K5 = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 5, 5, 6, 6, 6, 7, 7, 8, 8, 8, 9, 9]


def test_groups_and_grouped_chance_by_hand():
    assert cells.cell_groups(5).tolist() == K5
    assert np.bincount(cells.cell_groups(7)).tolist() == [5] * 9 + [4]
    assert cells.cell_groups(3).tolist() == list(range(9))  # 9 cells: no grouping
    assert cells.grouped_chance(3) == pytest.approx(100 / 9)
    # k = 5: five groups of 3 cells and five of 2: 5 (3/25)^2 + 5 (2/25)^2 = 10.4%.
    assert cells.grouped_chance(5) == pytest.approx(100 * (5 * 9 + 5 * 4) / 625)
    # True cells all in cell 0 (group 0, 3 of the 25 cells): 3/25.
    only_first = np.zeros((5, 5))
    only_first[0, 0] = 7
    assert cells.grouped_chance(5, only_first) == pytest.approx(12.0)
    assert cells.grouped_chance(2, [[3, 1], [0, 0]], labels=2) == pytest.approx(50.0)
    # Predicted 0, 2, 3, 24 for true 1, 2, 5, 24: groups 0=0, 0=0, 1!=2, 9=9.
    assert cells.grouped_accuracy([0, 2, 3, 24], [1, 2, 5, 24], 5) == 75.0
    for bad, match in ((0, "grid_size"), (2.5, "grid_size")):
        with pytest.raises(ValueError, match=match):
            cells.cell_groups(bad)
    with pytest.raises(ValueError, match="`examples` must be k\\^2 counts"):
        cells.grouped_chance(5, [1, 2, 3])


def test_grouped_chance_is_what_a_uniform_random_predictor_scores():
    rng = np.random.default_rng(0)
    for k in (4, 5, 7):
        true, guess = rng.integers(0, k * k, (2, 400_000))
        groups = cells.cell_groups(k)  # numpy oracle of the rate, not of the grouping
        found = 100 * np.mean(groups[true] == groups[guess])
        assert found == pytest.approx(cells.grouped_chance(k), abs=0.2)


def test_evaluation_records_grouped_location_scores(monkeypatch):
    import keras
    import tensorflow as tf

    from tfposenc.models import PermuteNet, ResNetBackbone
    from trainers.channelwise import evaluation

    keras.utils.set_random_seed(0)
    model = PermuteNet(ResNetBackbone(18, "cifar", 2), 16, seed=0, readout_init="torch")
    rng = np.random.default_rng(0)
    canvases = rng.uniform(0, 255, (32, 16, 16, 3)).astype("float32")
    where = np.arange(32) % 16
    location = tf.data.Dataset.from_tensor_slices((canvases, where)).batch(10)
    values = dict(evaluation.score(model, location, "permutenet", 4, 5, seed=3))
    pooled = np.asarray(model.pooled_features(canvases))
    kernel, bias = model.dense.get_weights()
    drawn = evaluation.draw_permutations(pooled.shape[1], 5, seed=3)
    predicted = evaluation.permuted_predictions(pooled, kernel, bias, drawn)
    groups = cells.cell_groups(4)  # 16 cells into 10 labels
    assert values["grouped_accuracy"] == pytest.approx(
        100 * np.mean(groups[predicted] == groups[where])
    )
    assert values["grouped_labels"] == 10
    assert values["grouped_chance"] == pytest.approx(cells.grouped_chance(4))
    assert np.shape(values["per_cell_grouped_accuracy"]) == (4, 4)
    assert values["grouped_accuracy"] >= values["accuracy"]
    classes = tf.data.Dataset.from_tensor_slices((canvases, where % 10, where)).batch(10)
    assert "grouped_accuracy" not in dict(
        evaluation.score(model, classes, "permutenet", 4, 5, seed=3)
    )


def grouped(record, accuracy):
    """`record` with each seed's grouped location scores: `accuracy` (%) in every cell."""
    k = record["grid_size"]
    for seed in record["seeds"]:
        grid = np.full((k, k), accuracy)
        seed.update(
            grouped_accuracy=float(grid.mean()),
            grouped_chance=cells.grouped_chance(k),
            grouped_labels=10,
            per_cell_grouped_accuracy=grid.tolist(),
            grouped_permutation_std=record["permutation_std"],
        )
    return record


def test_costs_location_at_k5_is_judged_with_grouped_cells_only():
    values = {**BUILT, ("classifier", "location"): 100.0, ("permutenet", "location"): 8.0}
    records = [make(n, t, v, k=5, images=2000, std=2.0) for (n, t), v in values.items()]
    found = next(c for c in claims.check(records) if c["claim"].startswith("(a)"))
    assert found["verdict"] == "inconclusive"
    assert "no grouped location scores" in found["evidence"]
    location = {
        (r["network"]): r for r in records if r["task"] == "location" and r["network"] != "sumnet"
    }
    grouped(location["classifier"], 100.0)
    grouped(location["permutenet"], 18.0)  # retention (18 - 10.4) / 89.6 = 0.08 < 0.75
    found = next(c for c in claims.check(records) if c["claim"].startswith("(a)"))
    assert found["verdict"] == "shown", found
    assert "25 cells grouped into 10 labels" in found["evidence"]
    assert "18.0% [" in found["evidence"] and "(chance 10.4%)" in found["evidence"]
    grouped(location["permutenet"], 95.0)  # location kept, class lost
    assert verdicts(records)["(a)"] == "not shown"


@pytest.mark.parametrize("location, expect", [(0.45, "null"), (0.10, "effect")])
def test_grouped_costs_location_calibrated_by_simulation(location, expect):
    """k = 5 with grouped location (chance 10.4%): under equal retentions (0.45) shown
    at most 5% of 2,000 runs; a location retention of 0.10 shown in 80% of 500."""
    rng = np.random.default_rng(3)
    runs, found = (2000 if expect == "null" else 500), []
    chance = {"location": cells.grouped_chance(5), "class": CHANCE["class"]}
    control = {"location": 99.0, "class": 90.0}
    retention = {"location": location, "class": 0.45}
    target = {("classifier", t): control[t] for t in control} | {
        ("permutenet", t): chance[t] + retention[t] * (control[t] - chance[t]) for t in control
    }
    sim = {
        key: simulate_runs(rng, runs, value, 1000, cell_sd=2.0, k=5)
        for key, value in target.items()
    }
    for i in range(runs):
        rows = {}
        for (n, t), (a, g) in sim.items():
            # location's plain (ungrouped) accuracy is not judged: any value
            rows[n, t] = make(n, t, 50.0 if t == "location" else a[i], k=5, images=1000, std=2.0)
            if t == "location":
                record = rows[n, t]
                record["seeds"][0].update(
                    grouped_accuracy=float(a[i]), grouped_chance=chance["location"],
                    grouped_labels=10, per_cell_grouped_accuracy=g[i].tolist(),
                    grouped_permutation_std=record["permutation_std"],
                )  # fmt: skip
        found.append(claims._costs_location(rows, 5, True, True)["verdict"])
    shown = rates(found)["shown"]
    assert shown <= 0.05 if expect == "null" else shown >= 0.8


def test_per_seed_grids_and_the_averaged_grid_give_the_same_cell_part():
    """Cells drawn once for every seed: the seeds' pooled grid is the averaged one, so a
    record read from its seeds and one read from its averaged grid (records without
    per-seed grids) agree; unequal canvases per cell weight the cells."""
    rng = np.random.default_rng(4)
    per_seed = rng.uniform(10, 60, (3, 3, 3))
    record = make("permutenet", "class", float(per_seed.mean()), seeds=per_seed.mean((1, 2)))
    record["per_cell_accuracy"] = per_seed.mean(0).tolist()
    averaged = dict((n, v) for n, v, _ in claims.parts(record))
    for seed, grid in zip(record["seeds"], per_seed):
        seed.update(per_cell_accuracy=grid.tolist(), per_cell_examples=[[180] * 3] * 3)
    hits, examples = claims.cell_results(record)
    assert hits.shape == (3, 9) and np.all(examples == 180)
    np.testing.assert_allclose(hits, per_seed.reshape(3, 9) / 100 * 180)
    assert dict((n, v) for n, v, _ in claims.parts(record)) == pytest.approx(averaged)
    record["seeds"][0]["per_cell_accuracy"][0][0] = None  # a cell without canvases
    hits, examples = claims.cell_results(record)
    assert examples[0, 0] == 0 and hits[0, 0] == 0 and examples[1, 0] == 180
    assert "9 cells resampled whole (10000 resamples)" in claims.holds(record)


def test_real_untrained_networks_show_nothing_with_grouped_location(tmp_path):
    """k = 5, one seed: the trainer's own records carry the grouped location scores
    (per seed), claim (a) is judged with them, and nothing is shown."""
    records = untrained_records(tmp_path, seeds=(0,), k=5)
    location = [r for r in records if r["task"] == "location"]
    assert all(s["grouped_labels"] == 10 for r in location for s in r["seeds"])
    for seed in (s for r in location for s in r["seeds"]):  # random placements: near 10.4
        assert seed["grouped_chance"] == pytest.approx(
            cells.grouped_chance(5, seed["per_cell_examples"])
        )
        assert seed["grouped_chance"] == pytest.approx(10.4, abs=1.0)
    found = claims.check(records)
    costs = next(c for c in found if c["claim"].startswith("(a)"))
    assert "grouped into 10 labels" in costs["evidence"]
    assert "shown" not in {c["verdict"] for c in found}, found


def seeded_records(rng, runs, accuracy, seeds=3, images=180, cell_sd=4.0, seed_sd=2.0):
    """PermuteNet class records of `seeds` seeds, each seed's per-cell grid drawn around
    `accuracy` (%) with cell, seed and seed-by-cell effects and scored on `images`."""
    p = (accuracy + rng.normal(0, cell_sd, (runs, 1, 9)) + rng.normal(0, seed_sd, (runs, seeds, 1))
         + rng.normal(0, cell_sd / 2, (runs, seeds, 9)))  # fmt: skip
    grids = rng.binomial(images, np.clip(p, 0, 100) / 100) / images * 100
    for grid in grids:
        record = make("permutenet", "class", float(grid.mean()), seeds=grid.mean(1), std=1.0)
        for seed, cells_of_seed in zip(record["seeds"], grid):
            seed.update(per_cell_accuracy=cells_of_seed.reshape(3, 3).tolist(),
                        per_cell_examples=[[images] * 3] * 3)  # fmt: skip
        yield record


def test_above_chance_with_three_seeds_calibrated_by_simulation():
    """Three seeds read per seed (the cells resampled once for all of them, the seed
    spread with 2 df): at chance shown at most 5% of 2,000 runs; 20% against 10% shown
    in at least 80% of 500."""
    rng = np.random.default_rng(6)
    found = [claims._above_chance(r, {})["verdict"] for r in seeded_records(rng, 2000, 10.0)]
    assert rates(found)["shown"] <= 0.05
    found = [claims._above_chance(r, {})["verdict"] for r in seeded_records(rng, 500, 20.0)]
    assert rates(found)["shown"] >= 0.8
