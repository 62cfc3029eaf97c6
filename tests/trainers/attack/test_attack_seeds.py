"""The attack's seeds: each model once per seed, seeded by its own seed, aggregated."""

import json
import math

import numpy as np
import pytest

from tests.trainers.smoke import smoke_config
from trainers.attack import EXPERIMENT
from trainers.attack.config import Combination
from trainers.framework import runner


def smoke(out, **overrides):
    return smoke_config(EXPERIMENT, out, **overrides)


def _first_batch(dataset):
    images, labels = next(iter(dataset))
    return images.numpy(), labels.numpy()


@pytest.mark.parametrize("task", ["segmentation", "location"])
def test_the_data_follows_the_combination_seed_not_the_config_seed(tmp_path, task):
    def ranking(config_seed, seed):
        config = smoke(tmp_path, seed=config_seed)
        return _first_batch(
            EXPERIMENT.data(config, Combination("zero", task, seed)).extra["ranking"]
        )

    zero = ranking(0, 0)
    for a, b in zip(zero, ranking(5, 0), strict=True):  # --seed is not the data's seed
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(zero[0], ranking(0, 1)[0])  # another seed, other canvases


def test_each_model_is_attacked_once_per_seed_and_aggregated(tmp_path):
    config = smoke(tmp_path, padding_modes=("zero",), tasks=("location",), seeds=(0, 1))
    records = runner.run(EXPERIMENT, config)
    assert [r["combination"] for r in records] == ["zero-location-seed0", "zero-location-seed1"]
    assert [r["seed"] for r in records] == [0, 1]
    summary = json.load(open(tmp_path / "results.json"))
    (row,) = summary["results"]
    assert row["combination"] == "zero-location"
    assert [r["combination"] for r in row["seeds"]] == [r["combination"] for r in records]
    values = [r["accuracy_overall"] for r in records]
    assert row["accuracy_overall"] == pytest.approx((values[0] + values[1]) / 2)
    assert row["accuracy_overall_std"] == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2))
    assert row["chance"] == records[0]["chance"] and row["chance_std"] == 0.0
    assert row["sweep"] == records[0]["sweep"]  # the claims read the lowest seed's sweep
    assert records[0]["ranking"] != records[1]["ranking"]  # ranked on other canvases
    assert {c["combination"] for c in summary["claims"]} == {"zero-location"}
    for name in ("zero-location-seed0", "zero-location-seed1"):
        assert (tmp_path / "results" / f"{name}.json").is_file()
        assert list((tmp_path / "tensorboard" / name).glob("events.*"))
