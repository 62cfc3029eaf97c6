"""What a run shows in TensorBoard, read with TensorBoard's own reader, and the flags and
hints around it (`--no-save-models`, `flags_hint`)."""

import dataclasses
import json

import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import plugin_event_multiplexer

from tests.trainers.framework.tiny_experiment import EXPERIMENT, TinyConfig
from trainers.framework import cli, progress, runner
from trainers.framework.callbacks import tensorboard_tag, tensorboard_value
from trainers.framework.config import TrainConfig, option
from trainers.framework.experiment import Summary

CLAIMS = [
    {"claim": "units help", "verdict": "not shown", "evidence": "interval [-3, +1]"},
    {"claim": "it learns", "verdict": "shown", "evidence": "p = 0.001"},
]


def board(out):
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        size_guidance={"tensors": 0, "images": 0}
    ).AddRunsFromDirectory(str(out / "tensorboard"))
    multiplexer.Reload()
    return multiplexer


def values(multiplexer, run, tag):
    return {e.step: tf.make_ndarray(e.tensor_proto) for e in multiplexer.Tensors(run, tag)}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tb") / "run"
    original = EXPERIMENT.summarize

    def summarize(config, records, run_dir):
        made = original(config, records, run_dir)
        series = {"tiny1": {"sweep/removed": [(0, 90.0), (50, 60.0)]}}
        return Summary(made.section, {"claims": CLAIMS}, series, {"sweep/removed": "% removed"})

    EXPERIMENT.summarize = summarize
    try:
        records = runner.run(EXPERIMENT, TinyConfig(out=str(out), epochs=2, save_models=False))
    finally:
        del EXPERIMENT.summarize  # the class's hook again
    return out, records, board(out)


def test_no_run_named_dot_and_the_report_run_holds_config_text_and_claims(tiny_run):
    out, _, multiplexer = tiny_run
    assert set(multiplexer.Runs()) == {"tiny1", "tiny2", "report"}
    assert not [p for p in (out / "tensorboard").iterdir() if p.is_file()]
    text = multiplexer.PluginRunToTagToContent("text")["report"]
    assert set(text) == {"report/1_what_this_run_shows", "report/2_claims", "report/3_results.md"}
    results_md = (out / "results.md").read_text()
    (markdown,) = values(multiplexer, "report", "report/3_results.md").values()
    assert markdown.item().decode() + "\n" == results_md
    (opening,) = values(multiplexer, "report", "report/1_what_this_run_shows").values()
    assert (
        opening.item()
        .decode()
        .startswith("**What this run shows.** This run reproduces the paper **only")
    )
    assert "of 2 claims checked, 1 shown, 1 not shown." in results_md
    (claims,) = values(multiplexer, "report", "report/2_claims").values()
    assert "| not shown | units help | interval [-3, +1] |" in claims.item().decode()
    assert "_hparams_/experiment" in multiplexer.PluginRunToTagToContent("hparams")["report"]


def test_accuracies_are_percent_and_the_validation_series_is_named(tiny_run):
    out, _, multiplexer = tiny_run
    logged = [json.loads(line) for line in open(out / "metrics.jsonl")]
    first = next(r for r in logged if r["combination"] == "tiny1")
    tags = set(multiplexer.PluginRunToTagToContent("scalars")["tiny1"])
    assert {"epoch/validation_accuracy", "epoch/validation_loss", "train/accuracy"} <= tags
    assert not [t for t in tags if "val_" in t]
    shown = values(multiplexer, "tiny1", "epoch/validation_accuracy")[4]  # epoch 1: step 4
    assert float(shown) == pytest.approx(100 * first["val_accuracy"], rel=1e-6)
    loss = values(multiplexer, "tiny1", "epoch/validation_loss")[4]
    assert float(loss) == pytest.approx(first["val_loss"], rel=1e-6)  # not scaled
    assert tensorboard_value("val_sparse_categorical_accuracy", 0.25) == 25.0
    assert tensorboard_value("loss", 0.25) == 0.25
    assert tensorboard_tag("val_accuracy", "test_set") == "test_set_accuracy"
    assert tensorboard_tag("accuracy", "test_set") == "accuracy"


def test_a_series_says_its_step_is_the_measured_quantity(tiny_run):
    _, _, multiplexer = tiny_run
    points = values(multiplexer, "tiny1", "sweep/removed")
    assert {k: float(v) for k, v in points.items()} == {0: 90.0, 50: 60.0}
    description = multiplexer.SummaryMetadata("tiny1", "sweep/removed").summary_description
    assert "Not a training curve: the step axis is the measured quantity (% removed)" in (
        description
    )


def test_no_save_models_writes_no_keras_file_but_exports(tiny_run):
    out, records, _ = tiny_run
    assert not (out / "models").exists()
    assert (out / "exports" / "tiny1").is_dir()
    assert records[0]["export"].endswith("tiny1")
    parser = cli.make_parser(TinyConfig, EXPERIMENT.presets, "tiny")
    args = parser.parse_args(["--no-save-models"])
    assert cli.from_args(TinyConfig, args, EXPERIMENT.presets).save_models is False
    assert TinyConfig().save_models is True


def test_an_experiment_declares_what_it_validates_on(tmp_path, monkeypatch):
    monkeypatch.setattr(EXPERIMENT, "validation_label", "test_set")
    out = tmp_path / "run"
    runner.run(EXPERIMENT, TinyConfig(out=str(out), units=(1,), epochs=1, export=False))
    tags = set(board(out).PluginRunToTagToContent("scalars")["tiny1"])
    assert "epoch/test_set_accuracy" in tags and "epoch/validation_accuracy" not in tags


@dataclasses.dataclass
class SeededConfig(TrainConfig):
    seeds: tuple[int, ...] = option((0, 1), "seeds", minimum=0)
    widths: tuple[int, ...] = option((4,), "widths")


@dataclasses.dataclass(frozen=True)
class Seeded:
    width: int
    seed: int


def test_flags_hint_names_the_fields_behind_the_combination_but_not_its_seed():
    hint = progress.flags_hint(SeededConfig(), Seeded(4, 0))
    assert hint == ". Flags that set this combination: --widths (it has width=4)"
    assert progress.flags_hint(TrainConfig(), Seeded(4, 0)) == ""


def test_an_empty_checkpoints_directory_is_removed_and_a_busy_one_kept(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "busy" / "other").mkdir(parents=True)
    runner.remove_if_empty(str(tmp_path / "empty"))
    runner.remove_if_empty(str(tmp_path / "busy"))
    runner.remove_if_empty(str(tmp_path / "absent"))
    assert not (tmp_path / "empty").exists() and (tmp_path / "busy" / "other").is_dir()
