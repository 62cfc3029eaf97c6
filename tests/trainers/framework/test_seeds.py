"""Seeds as a framework concept: one option, one name format, one aggregation."""

import dataclasses
import math

import pytest

import trainers.framework.seeds as framework_seeds
from trainers.attack import EXPERIMENT as ATTACK
from trainers.attack.config import AttackConfig
from trainers.channelwise import EXPERIMENT as CHANNELWISE
from trainers.channelwise.config import ChannelwiseConfig
from trainers.framework.config import TrainConfig, seeded_name
from trainers.framework.experiment import Experiment
from trainers.framework.seeds import aggregate, group_of, mean_and_std
from trainers.probe import EXPERIMENT as PROBE
from trainers.probe.config import ProbeConfig
from trainers.shift_invariance import EXPERIMENT as SHIFT
from trainers.shift_invariance.config import ShiftInvarianceConfig

CONFIGS = {
    "channelwise": (CHANNELWISE, ChannelwiseConfig),
    "attack": (ATTACK, AttackConfig),
    "shift_invariance": (SHIFT, ShiftInvarianceConfig),
    "probe": (PROBE, ProbeConfig),
}


def record(group, seed, **values):
    return {"combination": seeded_name(group, seed), "seed": seed, **values}


def test_one_seed_is_its_value_with_a_zero_deviation():
    (row,) = aggregate([record("a", 4, accuracy=70.0, note="x")], ("accuracy",))
    assert row["combination"] == "a" and row["accuracy"] == 70.0 and row["accuracy_std"] == 0.0
    assert row["note"] == "x" and "seed" not in row
    assert row["seeds"] == [record("a", 4, accuracy=70.0, note="x")]


def test_three_seeds_against_hand_computation():
    # accuracy 90, 93, 99: mean 94; deviations -4, -1, 5; squares 16 + 1 + 25 = 42;
    # sample variance 42 / (3 - 1) = 21, SD sqrt(21) = 4.5826.
    runs = [
        record("k3-net", 2, accuracy=99.0, loss=0.5),
        record("other", 0, accuracy=10.0, loss=None),
        record("k3-net", 0, accuracy=90.0, loss=0.25),
        record("k3-net", 1, accuracy=93, loss=None),
    ]
    first, second = aggregate(runs, ("accuracy", "loss", "absent"))
    assert first["combination"] == "k3-net" and second["combination"] == "other"
    assert first["accuracy"] == pytest.approx(94.0)
    assert first["accuracy_std"] == pytest.approx(math.sqrt(21.0))
    assert first["accuracy_std"] == pytest.approx(4.58257569)
    assert first["loss"] == pytest.approx(0.375)  # None skipped: (0.25 + 0.5) / 2
    assert first["loss_std"] == pytest.approx(math.sqrt(2 * 0.125**2))
    assert "absent" not in first and "absent_std" not in first
    assert [r["seed"] for r in first["seeds"]] == [0, 1, 2]  # sorted by seed
    assert first["seeds"][0] is runs[2]  # the per-seed records themselves
    assert second["loss"] is None and second["loss_std"] is None
    assert mean_and_std([1.0, math.nan])[0] != mean_and_std([1.0, math.nan])[0]  # NaN


def test_keep_false_holds_only_the_group_the_fields_and_the_seeds():
    (row,) = aggregate([record("a", 0, accuracy=1.0, note="x")], ("accuracy",), keep=False)
    assert set(row) == {"combination", "accuracy", "accuracy_std", "seeds"}


def test_records_without_a_seed_pass_through_and_bad_records_are_named():
    plain = {"combination": "tiny1", "accuracy": 50.0}
    assert aggregate([plain], ("accuracy",)) == [plain]
    with pytest.raises(ValueError, match="must end in '-seed1'. Received: combination='a-s1'"):
        group_of({"combination": "a-s1", "seed": 1})
    with pytest.raises(ValueError, match="`accuracy` must be in every seed's record or in none"):
        aggregate([record("a", 0, accuracy=1.0), record("a", 1)], ("accuracy",))
    with pytest.raises(ValueError, match="`accuracy` must be a number or None. Received"):
        aggregate([record("a", 0, accuracy="high")], ("accuracy",))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_experiment_has_the_framework_seeds_and_name_format(name, tmp_path):
    experiment, config_class = CONFIGS[name]
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    framework = {f.name: f for f in dataclasses.fields(TrainConfig)}["seeds"]
    assert fields["seeds"].metadata == framework.metadata  # one option, one help
    assert config_class.seed_list is TrainConfig.seed_list
    config = config_class(**{**experiment.presets.get("smoke", {}), "out": str(tmp_path)})
    config = dataclasses.replace(config, seeds=(3, 5))
    assert config.seed_list == (3, 5)
    combinations = experiment.combinations(config)
    assert {c.seed for c in combinations} == {3, 5}
    for combination in combinations:
        assert combination.name == f"{combination.group}-seed{combination.seed}"
        assert experiment.seed(config, combination) == combination.seed
    groups = {c.group for c in combinations}
    assert len(combinations) == 2 * len(groups)
    with pytest.raises(
        ValueError, match="`seeds` must not repeat a value. Received: seeds=\\(1, 1\\)"
    ):
        dataclasses.replace(config, seeds=(1, 1))


def test_seeds_default_to_seed_alone_where_not_preset():
    assert TrainConfig(seed=7).seed_list == (7,)
    assert ChannelwiseConfig().seeds == () and AttackConfig(seed=2).seed_list == (2,)
    assert ShiftInvarianceConfig().seed_list == (0, 1, 2)  # its own default, same field


def test_the_attack_runs_each_combination_once_per_seed(tmp_path):
    config = AttackConfig(out=str(tmp_path), tasks=("segmentation", "location"))
    names = [c.name for c in ATTACK.combinations(config)]
    assert names == [
        "zero-segmentation-seed0",
        "zero-location-seed0",
        "circular-segmentation-seed0",
        "circular-location-seed0",
    ]
    config = dataclasses.replace(config, padding_modes=("zero",), seeds=(0, 1, 2), seed=9)
    combinations = ATTACK.combinations(config)
    assert [(c.task, c.seed) for c in combinations] == [
        ("segmentation", 0), ("segmentation", 1), ("segmentation", 2),
        ("location", 0), ("location", 1), ("location", 2),
    ]  # fmt: skip
    assert [ATTACK.seed(config, c) for c in combinations] == [0, 1, 2] * 2  # not --seed


def _per_seed(experiment, config, fields):
    """Two seeds of every group of the experiment's combinations, `fields` per record."""
    out = []
    for index, c in enumerate(experiment.combinations(config)):
        values = {f: float(index + c.seed) for f in fields}
        out.append({"combination": c.name, **dataclasses.asdict(c), **values})
    return out


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_experiment_aggregates_through_the_framework(name, tmp_path, monkeypatch):
    """The same aggregation is what each experiment's records go through: replaced by a
    recorder, it is called with the experiment's per-seed records, and the per-seed part
    of the result (`combination`, `seeds`, `<field>` and `<field>_std`) is its."""
    experiment, config_class = CONFIGS[name]
    config = config_class(**{**experiment.presets.get("smoke", {}), "out": str(tmp_path)})
    config = dataclasses.replace(config, seeds=(0, 1))

    calls = []
    real = framework_seeds.aggregate

    def recording(records, fields, **kwargs):
        calls.append(fields)
        return real(records, fields, **kwargs)

    modules = {
        "channelwise": "trainers.channelwise.results.seeds.aggregate",
        "shift_invariance": "trainers.shift_invariance.claims.aggregate_seeds",
        "attack": "trainers.attack.experiment.aggregate_seeds",
        "probe": "trainers.probe.experiment.aggregate_seeds",
    }
    monkeypatch.setattr(modules[name], recording)
    field = {"channelwise": "accuracy", "shift_invariance": "top1", "attack": "accuracy_overall",
             "probe": "classifier_location"}[name]  # fmt: skip
    records = _per_seed(experiment, config, [field])
    extras = {
        "channelwise": dict(chance=10.0, epochs_trained=1, train_seconds=1.0, test_seconds=1.0),
        "shift_invariance": dict(cons8=1.0, cons16=1.0, circular_consistency=1.0, examples=4,
                                 step_seconds=0.1, test_digest="d", curve={"1": 1.0}),
    }.get(name, {})  # fmt: skip
    records = [{**r, **extras} for r in records]
    rows = experiment.aggregate(config, records)
    assert len(calls) == 1 and field in calls[0]
    assert [r["combination"] for r in rows] == list(dict.fromkeys(group_of(r) for r in records))
    for row in rows:
        runs = row["seeds"]
        assert [r["seed"] for r in runs] == [0, 1]
        values = [r[field] for r in runs]
        assert row[field] == pytest.approx(sum(values) / 2)
        assert row[f"{field}_std"] == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2))


def test_the_default_experiment_aggregates_accuracy_over_seeds():
    runs = [record("a", 0, accuracy=40.0), record("a", 1, accuracy=60.0)]
    (row,) = Experiment().aggregate(None, runs)
    assert row["accuracy"] == 50.0 and row["accuracy_std"] == pytest.approx(math.sqrt(200.0))
