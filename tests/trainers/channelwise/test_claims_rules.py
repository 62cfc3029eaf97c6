"""Table 1's rules (`trainers.channelwise.claims`): intervals by hand, and each rule's
error rates simulated on records built as the trainer builds them."""

import math

import numpy as np
import pytest
from scipy import stats

from trainers.channelwise import claims

CHANCE = {"location": 100 / 9, "class": 10.0}


def make(network, task, accuracy, *, k=3, images=180, cells=None, seeds=None, std=5.0):
    """An aggregated record: `accuracy` (%), per-cell accuracies `cells` (k x k, default
    all equal), per-seed accuracies `seeds` (default one seed)."""
    seeds = [accuracy] if seeds is None else list(seeds)
    grid = np.full((k, k), accuracy) if cells is None else np.asarray(cells, float)
    shuffled = network == "permutenet"
    return {
        "network": network, "task": task, "grid_size": k, "padding_mode": "zero",
        "downsampling": "stride", "accuracy": float(np.mean(seeds)),
        "chance": 100 / k**2 if task == "location" else 10.0, "examples": images * k * k,
        "per_cell_accuracy": grid.tolist(), "permutations": 100 if shuffled else 0,
        "permutation_std": std if shuffled else 0.0,
        "seeds": [{"seed": i, "accuracy": a} for i, a in enumerate(seeds)],
    }  # fmt: skip


def verdicts(records, **kwargs):
    """`{"(a)": verdict, "(b)": ..., "(c) location": ..., "(c) class": ...}` at one k."""
    found = {}
    for c in claims.check(records, **kwargs):
        key = c["claim"][:3]
        if key == "(c)":
            key += " " + c["claim"].split(",")[1].strip()
        found[key] = c["verdict"]
    return found


def test_interval_parts_by_hand():
    cells = [[20, 30, 40], [25, 30, 35], [28, 32, 30]]
    record = make("permutenet", "location", 30.0, cells=cells, seeds=[26.0, 30.0, 34.0])
    found = {name: (v, df) for name, v, df in claims.parts(record)}
    assert found["seeds"] == pytest.approx((16.0 / 3, 2))
    assert found["permutations"] == pytest.approx((25.0 / 300, 99))
    ci = stats.binomtest(54, 180).proportion_ci(0.95, "wilson")  # 30% of 180 images
    assert found["test images"][0] == pytest.approx((100 * (ci.high - ci.low) / 3.919928) ** 2)
    # Cells resampled whole: for equal cells, the analytic variance of their mean (the
    # bootstrap's Monte Carlo error at 10,000 resamples is about 2%).
    assert found["cells"] == pytest.approx((np.var(cells, ddof=1) / 9, 8), rel=0.05)
    total = sum(v for v, _ in found.values())
    df = total**2 / sum(v * v / d for v, d in found.values() if math.isfinite(d))
    low, high = claims.interval(record)
    assert high - 30.0 == pytest.approx(stats.t.ppf(0.975, df) * math.sqrt(total))
    assert low == pytest.approx(60.0 - high)


def test_seeds_do_not_shrink_the_test_image_term_and_100_percent_has_width():
    one = dict((n, v) for n, v, _ in claims.parts(make("classifier", "class", 60.0)))
    three = dict(
        (n, v) for n, v, _ in claims.parts(make("classifier", "class", 60.0, seeds=[59, 60, 61]))
    )
    assert three["test images"] == pytest.approx(one["test images"])  # the old code: / 3
    low, high = claims.interval(make("classifier", "location", 100.0))
    assert high >= 100.0 and 97.0 < low < 99.5  # Wald: [100, 100]


def table(values, **kwargs):
    return [make(n, t, v, **kwargs) for (n, t), v in values.items()]


BUILT = {
    ("classifier", "location"): 100.0, ("classifier", "class"): 90.0,
    ("permutenet", "location"): 20.0, ("permutenet", "class"): 70.0,
    ("sumnet", "location"): 20.5, ("sumnet", "class"): 70.5,
}  # fmt: skip


def test_records_built_to_satisfy_the_claims_show_them():
    found = claims.check(table(BUILT, images=2000, std=2.0))
    assert verdicts(table(BUILT, images=2000, std=2.0)) == {
        "cla": "shown", "(b)": "shown", "(a)": "shown",
        "(c) location": "shown", "(c) class": "shown",
    }  # fmt: skip
    tracks = next(c for c in found if c["claim"].startswith("(c)"))
    assert "margin of +-5 points" in tracks["evidence"]
    assert "1000 test images" not in tracks["evidence"] and "2000 test images" in tracks["evidence"]
    assert verdicts(table(BUILT, images=2000), matched=False)["(a)"] == "inconclusive"
    opposite = {**BUILT, ("permutenet", "location"): 95.0, ("permutenet", "class"): 30.0}
    assert verdicts(table(opposite, images=2000))["(a)"] == "not shown"
    far = {**BUILT, ("sumnet", "class"): 85.0}
    assert verdicts(table(far, images=2000, std=2.0))["(c) class"] == "not shown"


def test_unequal_label_cardinality_is_not_judged():
    found = claims.check(table(BUILT, images=2000, std=2.0, k=5))
    costs = next(c for c in found if c["claim"].startswith("(a)"))
    assert costs["verdict"] == "inconclusive" and "25 location labels" in costs["evidence"]


def test_wide_intervals_never_show_tracking():
    """The old rule: overlap + SumNet's point inside PermuteNet's interval: shown; the
    project's own test called 25% against 31% with 180 images "shown"."""
    close = {**BUILT, ("permutenet", "class"): 25.0, ("sumnet", "class"): 31.0}
    assert verdicts(table(close, std=8.0))["(c) class"] == "inconclusive"


def simulate_runs(rng, runs, accuracy, images, cell_sd, k=3):
    """Per-run `(accuracy, per-cell grid)` of networks whose per-cell accuracy is drawn
    around `accuracy` (%) with SD `cell_sd` and scored on `images` images."""
    p = np.clip(rng.normal(accuracy / 100, cell_sd / 100, (runs, k * k)), 0.0, 1.0)
    hits = rng.binomial(images, p) / images * 100
    return hits.mean(1), hits.reshape(runs, k, k)


def rates(found):
    return {v: float(np.mean(np.asarray(found) == v)) for v in ("shown", "not shown")}


@pytest.mark.parametrize("gap, expect", [(5.0, "null"), (-5.0, "null"), (0.0, "effect")])
def test_tracks_calibrated_by_simulation(gap, expect):
    rng = np.random.default_rng(0)
    runs = 2000 if expect == "null" else 500  # the null at 2,000 runs, the power at 500
    mine = simulate_runs(rng, runs, 40.0, 2000, cell_sd=1.0)
    scalar = simulate_runs(rng, runs, 40.0 + gap, 2000, cell_sd=1.0)
    found = []
    for i in range(runs):
        m = make("permutenet", "class", mine[0][i], images=2000, cells=mine[1][i], std=2.0)
        s = make("sumnet", "class", scalar[0][i], images=2000, cells=scalar[1][i])
        found.append(claims._tracks(m, s, "class", 3, claims.MARGIN)["verdict"])
    shown = rates(found)["shown"]
    assert shown <= 0.05 if expect == "null" else shown >= 0.8


def test_above_chance_survives_clustered_untrained_networks():
    """Untrained networks: per-cell accuracy spread widely around chance (eight real ones
    located at 6.7-23.1%). The old binomial interval over images calls many of them
    above chance; the new one (cells as clusters) at most 5%."""
    rng = np.random.default_rng(1)
    runs, found, old = 2000, [], 0
    accuracy, grid = simulate_runs(rng, runs, 10.0, 180, cell_sd=12.0)
    for a, g in zip(accuracy, grid):
        record = make("permutenet", "class", a, cells=g, std=1.0)
        found.append(claims._above_chance(record, {})["verdict"])
        old += a - 1.96 * math.sqrt(a * (100 - a) / 180) > 10.0
    assert rates(found)["shown"] <= 0.05 < old / runs
    accuracy, grid = simulate_runs(rng, 500, 25.0, 180, cell_sd=3.0)  # the effect: 25%
    found = [
        claims._above_chance(make("permutenet", "class", a, cells=g), {})["verdict"]
        for a, g in zip(accuracy, grid)
    ]
    assert rates(found)["shown"] >= 0.8


@pytest.mark.parametrize("location, expect", [(0.45, "null"), (0.10, "effect")])
def test_costs_location_calibrated_by_simulation(location, expect):
    rng = np.random.default_rng(2)
    runs, found = (2000 if expect == "null" else 500), []
    control = {"location": 100.0, "class": 90.0}
    retention = {"location": location, "class": 0.45}
    sim = {
        (n, t): simulate_runs(rng, runs, accuracy, 1000, cell_sd=2.0)
        for t in ("location", "class")
        for n, accuracy in (
            ("classifier", control[t]),
            ("permutenet", CHANCE[t] + retention[t] * (control[t] - CHANCE[t])),
        )
    }
    for i in range(runs):
        rows = {
            key: make(*key, a[i], cells=g[i], images=1000, std=2.0) for key, (a, g) in sim.items()
        }
        found.append(claims._costs_location(rows, 3, True, True)["verdict"])
    shown = rates(found)["shown"]
    assert shown <= 0.05 if expect == "null" else shown >= 0.8


def untrained_records(tmp_path, seeds, k=3):
    """Records of untrained networks (initialisations `seeds`), scored by the trainer's
    own `evaluate` on k x k digit canvases and aggregated by its own `aggregate`."""
    import dataclasses

    import keras

    from tests.trainers.smoke import smoke_config
    from trainers.channelwise import EXPERIMENT

    config = smoke_config(
        EXPERIMENT, tmp_path, grid_sizes=(k,), tasks=("location", "class"), seeds=seeds,
        networks=("classifier", "permutenet", "sumnet"), test_examples=40, permutations=20,
    )  # fmt: skip
    per_seed, data = [], {}
    for combination in EXPERIMENT.combinations(config):
        keras.utils.set_random_seed(combination.seed)
        model = EXPERIMENT.build_model(config, combination)
        key = (combination.task, combination.seed)
        data.setdefault(key, EXPERIMENT.data(config, combination))
        scored = dict(EXPERIMENT.evaluate(config, combination, model, data[key]))
        per_seed.append({"combination": combination.name, **dataclasses.asdict(combination),
                         **scored, "epochs_trained": 0, "train_seconds": 0.0,
                         "test_seconds": 0.0})  # fmt: skip
    return EXPERIMENT.aggregate(config, per_seed)


@pytest.mark.parametrize(
    "seeds", [(0,), pytest.param((0, 1, 2), marks=pytest.mark.slow)], ids=["1seed", "3seeds"]
)
def test_real_untrained_networks_show_nothing(tmp_path, seeds):
    records = untrained_records(tmp_path, seeds=seeds)
    assert {r["network"] for r in records} == {"classifier", "permutenet", "sumnet"}
    assert all(len(r["seeds"]) == len(seeds) and r["examples"] == 360 for r in records)
    found = claims.check(records)
    assert len(found) == 5  # locates, (b), (a), (c) location, (c) class
    assert "shown" not in {c["verdict"] for c in found}, found
