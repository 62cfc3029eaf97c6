"""The attack's smoke run: its results, border artifacts, figures, tables and TensorBoard runs."""

import glob
import json
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from tests.trainers.smoke import smoke_config
from trainers.attack import EXPERIMENT
from trainers.attack import data as attack_data
from trainers.attack.config import PRESETS
from trainers.framework import runner


def smoke(out, **overrides):
    return smoke_config(EXPERIMENT, out, **overrides)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """`(out, records, CPU seconds)` of one smoke run: the process's CPU time (every
    thread), which a machine shared with other work does not inflate as it does wall time."""
    out = tmp_path_factory.mktemp("attack-smoke")
    start = time.process_time()
    records = runner.run(EXPERIMENT, smoke(out))
    return out, records, time.process_time() - start


def test_smoke_writes_results_json_lists(smoke_run):
    out, results, cpu_seconds = smoke_run
    # CPU time, not wall time: the bound holds on a machine shared with other work.
    # "Well under a minute" of wall time on 2 cores is under ~90 CPU seconds.
    print(f"smoke: {cpu_seconds:.0f} CPU seconds")
    assert cpu_seconds < 90
    assert [r["combination"] for r in results] == [
        "zero-segmentation-seed0",
        "zero-location-seed0",
        "circular-segmentation-seed0",
        "circular-location-seed0",
    ]  # fmt: skip: the runner's per-seed records
    summary = json.load(open(out / "results.json"))
    sweep, fractions = summary["sweep"], PRESETS["smoke"]["fractions"]
    keys = {"padding", "task", "selection", "fraction", "region", "metric", "value", "std"}
    assert all(keys <= set(record) for record in sweep)
    regions = {
        "segmentation": {"overall", "left", "right", "centre", "border", "inner"},
        "location": {"overall", "border", "inner"},
    }
    for padding in ("zero", "circular"):
        for task, metric in (("segmentation", "miou"), ("location", "accuracy")):
            mine = [r for r in sweep if r["padding"] == padding and r["task"] == task]
            assert {r["region"] for r in mine} == regions[task]
            assert {r["metric"] for r in mine} == {metric}
            selections = {"ranked", "random", "random_matched", "magnitude"}
            assert {r["selection"] for r in mine} == selections
            assert len(mine) == 4 * len(fractions) * len(regions[task])
            assert {r["ranking"] for r in mine} == {"flip_2d"}  # sees rows and columns
            record = next(r for r in results if r["combination"] == f"{padding}-{task}-seed0")
            for region in regions[task]:  # the headline numbers are top-level floats (%)
                assert isinstance(record[f"{metric}_{region}"], float)
            assert -1 <= summary["flip_magnitude_spearman"][f"{padding}-{task}"] <= 1  # group
            for r in mine:
                assert 0 <= r["value"] <= 1 or np.isnan(r["value"])
                if not r["selection"].startswith("random"):
                    assert r["std"] == 0
                else:
                    assert r["std"] == pytest.approx(np.std(r["values"]))
                    draws = PRESETS["smoke"]["random_draws"] if r["fraction"] else 1
                    assert len(r["values"]) == r["draws"]  # one empty set at 0
                    if r["selection"] == "random":
                        assert r["draws"] == draws
                    else:  # fewer where fewer magnitude-matched sets exist
                        assert 1 <= r["draws"] <= draws
            # nothing removed: ranked and random are the same unablated model
            at_zero = [r for r in mine if r["fraction"] == 0 and r["region"] == "overall"]
            assert at_zero[0]["value"] == pytest.approx(at_zero[1]["value"])
    keys = {"padding", "stage", "border_contrast", "constant_input_std", "random_border_gap"}
    assert summary["artifacts"] and all(keys <= set(a) for a in summary["artifacts"])
    modes = {a["padding"] for a in summary["architecture_artifacts"]}
    assert modes == {"zero", "reflect", "replicate", "circular"}
    claims = summary["claims"]
    assert {c["claim"] for c in claims} >= {
        "ranked removal hurts more than random", "the damage is larger at the border than inside"
    }  # fmt: skip
    assert all(c["verdict"] in ("shown", "not shown", "inconclusive") for c in claims)
    # Two draws at the claim fraction: no test against random is judged.
    against = [c for c in claims if "random" in c["claim"]]
    assert against and {c["verdict"] for c in against} == {"inconclusive"}
    # The location models' ranked and magnitude records at the claim fraction carry their
    # per-canvas hits (images x cells) for the paired magnitude claim, matching `value`.
    paired = [r for r in sweep if "canvas_values" in r]
    assert {(r["task"], r["selection"], r["fraction"], r["region"]) for r in paired} == {
        ("location", s, 0.5, "overall") for s in ("ranked", "magnitude")
    }
    for r in paired:
        hits = np.asarray(r["canvas_values"])
        assert hits.shape == (PRESETS["smoke"]["location_test_examples"], 9)
        assert hits.mean() == pytest.approx(r["value"])


def test_circular_padding_has_no_border_artifacts_and_zero_padding_has(smoke_run):
    _, results, _ = smoke_run
    artifacts = [a for r in results for a in r["artifacts"]]
    stages = {a["stage"] for a in artifacts}
    assert {"stem", "stage1", "stage2", "stage3", "stage4"} <= stages
    circular = [a for a in artifacts if a["padding"] == "circular"]
    assert max(a["constant_input_std_max"] for a in circular) < 1e-5
    zero = [a for a in artifacts if a["padding"] == "zero"]
    assert max(a["constant_input_std"] for a in zero) > 1e-3
    # Noise inputs: the border shows for zero padding; for circular it is sampling error.
    for a in artifacts:
        if a["padding"] == "circular" and not np.isnan(a["random_border_gap"]):
            assert a["random_border_gap"] < 3 * a["random_border_gap_se"], a
        if a["padding"] == "zero" and a["stage"] in ("stage1", "stage2"):
            assert a["random_border_gap"] > 3 * a["random_border_gap_se"], a


def _tags(folder):
    """`{kind: tags}` of every event file directly in `folder` (one run)."""
    tags = {}
    for path in glob.glob(str(folder / "events.out.tfevents*")):
        accumulator = event_accumulator.EventAccumulator(path, size_guidance={"tensors": 0})
        accumulator.Reload()
        for kind, names in accumulator.Tags().items():
            if isinstance(names, list):
                tags.setdefault(kind, set()).update(names)
    return tags


def test_figures_markdown_and_tensorboard_runs(smoke_run):
    out, results, _ = smoke_run
    for name in (
        "sweep-zero-segmentation", "sweep-circular-location", "qualitative-zero",
        "qualitative-circular", "feature-maps-zero-segmentation-seed0-constant",
        "feature-maps-circular-location-seed0-sample",
    ):  # fmt: skip
        assert (out / f"{name}.png").stat().st_size > 1000, name
    table = open(out / "results.md").read()
    assert (
        "| zero | segmentation | border |" in table and "| zero | segmentation | centre |" in table
    )
    assert "| circular | location | inner |" in table and "periphery" not in table
    assert "## Claims" in table and "## Border artifacts of untrained backbones" in table
    board = out / "tensorboard"
    assert not [p for p in board.iterdir() if not p.is_dir()]  # no run "."; config in report
    assert sorted(p.name for p in board.iterdir() if p.is_dir()) == [
        "circular-location-seed0",
        "circular-segmentation-seed0",
        "report",
        "zero-location-seed0",
        "zero-segmentation-seed0",
    ]  # fmt: skip: one run per combination, no sub-runs, and the report
    for combination in ("zero-segmentation-seed0", "circular-location-seed0"):
        assert not [p for p in (board / combination).iterdir() if p.is_dir()]
        tags = _tags(board / combination)["tensors"]
        metric, region = (
            ("miou", "border") if "segmentation" in combination else ("accuracy", "inner")
        )
        assert {f"sweep/ranked/{region}", f"sweep/random/{region}",
                f"sweep/magnitude/{region}", f"sweep/random_sd/{region}"} <= tags  # fmt: skip
        assert {f"test/{metric}_overall", f"test/{metric}_{region}",
                "test/flip_magnitude_spearman", "_hparams_/session_start_info"} <= tags  # fmt: skip
        training = "epoch/pixel_accuracy" if "segmentation" in combination else "epoch/accuracy"
        assert training in tags
    assert {"qualitative-zero", "feature-maps-zero-segmentation-seed0-sample"} <= _tags(
        board / "zero-segmentation-seed0"
    )["tensors"]
    report_tags = _tags(board / "report")["tensors"]
    assert {"sweep-zero-segmentation.png", "qualitative-circular.png"} <= report_tags
    # The sweep's x axis is the percentage removed; the values are the records' (in %).
    accumulator = event_accumulator.EventAccumulator(
        str(board / "zero-location-seed0"), size_guidance={"tensors": 0}
    )
    accumulator.Reload()
    points = {
        e.step: float(tf.make_ndarray(e.tensor_proto))
        for e in accumulator.Tensors("sweep/ranked/overall")
    }
    sweep = [
        x for x in results[1]["sweep"] if x["selection"] == "ranked" and x["region"] == "overall"
    ]
    assert points == pytest.approx({round(100 * x["fraction"]): 100 * x["value"] for x in sweep})


def _confusion_miou(truth, predicted, classes):
    confusion = np.zeros((classes, classes))
    for t, p in zip(truth.ravel(), predicted.ravel()):
        confusion[t, p] += 1
    ious = [
        confusion[c, c] / (confusion[c].sum() + confusion[:, c].sum() - confusion[c, c])
        for c in range(classes)
        if confusion[c].sum() + confusion[:, c].sum() > 0
    ]
    return float(np.mean(ious))


def test_unablated_sweep_value_is_the_test_miou_of_the_saved_model(smoke_run):
    out, results, _ = smoke_run
    config = smoke(out)
    model = keras.saving.load_model(out / "models" / "zero-segmentation-seed0.keras")
    _, test, _, _ = attack_data.segmentation_data(config)
    truth, predicted = [], []
    for images, labels in test:
        truth.append(labels.numpy())
        predicted.append(np.asarray(model(images, training=False)).argmax(-1))
    truth, predicted = np.concatenate(truth), np.concatenate(predicted)
    assert len(truth) == config.test_examples
    expected = _confusion_miou(truth, predicted, 11)
    record = next(
        r for r in results[0]["sweep"]
        if r["fraction"] == 0 and r["region"] == "overall" and r["selection"] == "ranked"
    )  # fmt: skip
    assert record["value"] == pytest.approx(expected, abs=1e-6)
