"""The channelwise smoke run: its artifacts and its TensorBoard runs."""

import glob
import json

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import plugin_event_multiplexer

from tests.trainers.smoke import smoke_fixture
from trainers.channelwise import EXPERIMENT
from trainers.framework import artifacts
from trainers.framework.seeds import group_of

smoke_run = smoke_fixture(EXPERIMENT)


def test_smoke_writes_every_artifact(smoke_run):
    out, results, seconds = smoke_run
    assert seconds < 180  # ~20 s on 2 idle cores; generous for a loaded machine
    assert len(results) == 2
    with open(out / "config.json") as f:
        assert json.load(f)["experiment"] == "channelwise"
    lines = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert {line["combination"] for line in lines} == {r["combination"] for r in results}
    assert all("loss" in line and "val_accuracy" in line for line in lines)
    summary = json.load(open(out / "results.json"))
    assert len(summary["results"]) == 2 and summary["config"]["grid_sizes"] == [2]
    table = open(out / "results.md").read()
    assert "| zero | classifier |" in table and "chance" in table and "## Cost" in table
    assert "## Geometry" in table and "| 2 | 8 px | 16x16 | 1x1 | 0.25 |" in table
    assert "after the last epoch (no selection)" in table and "24 test images, k^2 passes" in table
    assert "`--border-grid-size 4` adds them" in table
    assert "poster" not in table.replace("The poster's numbers", "")  # digits: none shown
    assert (out / "learning_curves.png").stat().st_size > 1000
    assert (out / "location_accuracy.png").stat().st_size > 1000
    assert glob.glob(str(out / "heatmaps" / "*.png"))
    assert glob.glob(str(out / "models" / "*.keras"))
    for r in summary["results"]:
        assert {"network", "task", "grid_size", "padding_mode", "accuracy", "accuracy_std"} <= set(
            r
        )
        assert "padding" not in r and r["padding_mode"] == "zero" and r["accuracy_std"] == 0.0
        assert r["steps"] == 2 * 4 and r["batch_size"] == 24  # 96 canvases, batch 24, 2 epochs
        assert (r["learning_rate"], r["beta_1"]) == pytest.approx((3e-3, 0.9))  # matched
        shuffled = r["network"] == "permutenet"
        assert r["permutations"] == (100 if shuffled else 0)
        assert isinstance(r["permutation_std"], float) and (r["permutation_std"] > 0) == shuffled
        assert (r["expected_logit_accuracy"] is not None) == shuffled
        (run,) = r["seeds"]
        assert run["seed"] == 0 and run["accuracy"] == r["accuracy"]
        assert 0 <= r["accuracy"] <= 100
        assert run["epochs_trained"] == 2 and run["examples"] == 24 * 4  # k^2 passes
        assert artifacts.exported(run["export"])
        assert np.nansum(r["per_cell_accuracy"]) > 0
    assert "Matched budgets: every row trained 8 steps" in table
    assert "## What this run shows" in table and "Does this run test" not in table
    assert summary["claims"] and all(
        set(c) == {"claim", "verdict", "evidence"}
        and c["verdict"] in ("shown", "not shown", "inconclusive")
        for c in summary["claims"]
    )
    assert "24 *validation images* held out of the training split (disjoint from the test" in table


def test_tensorboard_runs_read_by_tensorboards_own_reader(smoke_run):
    out, results, _ = smoke_run
    board = plugin_event_multiplexer.EventMultiplexer(
        size_guidance={"tensors": 0, "images": 0}
    ).AddRunsFromDirectory(str(out / "tensorboard"))
    board.Reload()
    combinations = {r["combination"] for r in results}
    # one run per combination and the report (figures, text, the hparams config); no "."
    assert set(board.Runs()) == combinations | {"report"}
    scalars = board.PluginRunToTagToContent("scalars")
    hparams = board.PluginRunToTagToContent("hparams")
    images = board.PluginRunToTagToContent("images")
    for name in combinations:
        tags = set(scalars[name])
        assert {"train/loss", "epoch/loss", "learning_rate", "test/accuracy"} <= tags
        assert {"test/permutation_std", "epoch/val_permuted_accuracy"} <= tags
        assert "_hparams_/session_start_info" in hparams[name]
        (event,) = board.Tensors(name, "test/accuracy")
        accuracy = next(r["accuracy"] for r in results if r["combination"] == name)
        assert float(tf.make_ndarray(event.tensor_proto)) == pytest.approx(accuracy, rel=1e-5)
        assert "sample_canvases" in images.get(name, {})
    report = set(images["report"])
    assert {"location_accuracy.png", "learning_curves.png"} <= report
    # The HParams page's table: its metrics are the test values, not the epoch tags.
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = board.SummaryMetadata("report", "_hparams_/experiment").plugin_data.content
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content).experiment
    metrics = {m.name.tag for m in experiment.metric_infos}
    assert "test/accuracy" in metrics and not [m for m in metrics if m.startswith("epoch/")]
    assert "combination" in {h.name for h in experiment.hparam_infos}
    # the heatmaps are drawn per group (over its seeds): the name without `-seed<n>`
    assert {f"heatmaps/{group_of(r)}.png" for r in results} <= report
