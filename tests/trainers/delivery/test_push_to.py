"""`--push-to`: a finished run delivers each export through the validated push."""

import json
import os

import keras
import numpy as np
import pytest

from tests.trainers.smoke import smoke_config
from trainers.attack import EXPERIMENT as ATTACK
from trainers.channelwise import EXPERIMENT
from trainers.channelwise import main as channelwise_main
from trainers.channelwise.config import PRESETS, ChannelwiseConfig
from trainers.framework import registry, runner

LINEAGE = os.path.join("assets.extra", "tfposenc_lineage.json")
BROKEN = None  # replaced by a test: a push that raises


def test_push_to_serves_each_validated_export_and_records_it(tmp_path):
    values = dict(PRESETS["smoke"])
    values.update(
        out=str(tmp_path / "run"), networks=("gapnet",), push_to=str(tmp_path / "serving")
    )
    config = ChannelwiseConfig(**values)
    results = runner.run(EXPERIMENT, config)
    (name,) = [r["combination"] for r in results]
    version = tmp_path / "serving" / name / "1"
    assert (version / "saved_model.pb").exists()
    lineage = json.load(open(version / "assets.extra" / "tfposenc_lineage.json"))
    assert name in json.dumps(lineage)
    summary = json.load(open(tmp_path / "run" / "results.json"))
    assert summary["pushes"] == [
        {
            "combination": name,
            "pushed": True,
            "version": 1,
            "path": str(version),
            "failed_checks": [],
        }
    ]

    # Resuming the finished run with a stricter gate is allowed (push settings are not
    # part of the run's identity) and refuses the same model: nothing new is served.
    stricter = ChannelwiseConfig(**{**values, "push_min_value": 101.0})
    runner.run(EXPERIMENT, stricter)
    served = [n for n in os.listdir(tmp_path / "serving" / name) if not n.startswith(".")]
    assert served == ["1"]
    pushes = json.load(open(tmp_path / "run" / "results.json"))["pushes"]
    assert pushes[0]["pushed"] is False and any("101" in m for m in pushes[0]["failed_checks"])


def test_push_to_with_the_class_task_pushes_after_the_results(tmp_path, capsys):
    """The class task's test batches are `(canvas, class, cell)`: the push reads them by
    their declared names (it used to unpack two and lose the run's results)."""
    run, serving = tmp_path / "run", tmp_path / "serving"
    argv = ["--preset", "smoke", "--tasks", "class", "--networks", "classifier"]
    argv += ["--out", str(run), "--push-to", str(serving)]
    assert channelwise_main(argv) == 0
    summary = json.load(open(run / "results.json"))
    (push,) = summary["pushes"]
    assert push["pushed"] and push["version"] == 1 and push["failed_checks"] == []
    lineage = json.load(open(serving / push["combination"] / "1" / LINEAGE))
    assert lineage["evaluation"]["via"] == "trainers.channelwise evaluation_data hook"
    assert lineage["candidate"]["examples"] == 24 * 4  # 24 test images, k^2 passes
    assert (run / "results.md").exists()

    # A push that fails its threshold: exit 1 with one line, the results written first
    # and the reason recorded under `pushes`.
    os.remove(run / "results.json")
    os.remove(run / "results.md")
    capsys.readouterr()
    assert channelwise_main([*argv, "--push-min-value", "101"]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == [
        f"python -m trainers.channelwise: error: push of {push['combination']} failed: "
        f"accuracy {lineage['candidate']['accuracy']:.2f} < min-value 101.00"
    ]
    summary = json.load(open(run / "results.json"))
    assert summary["results"] and (run / "results.md").exists()
    (refused,) = summary["pushes"]
    assert not refused["pushed"] and "min-value 101.00" in refused["failed_checks"][0]


def test_a_push_that_raises_is_recorded_and_the_results_stay(tmp_path, monkeypatch):
    values = dict(PRESETS["smoke"], networks=("gapnet",), epochs=1, out=str(tmp_path / "run"))
    config = ChannelwiseConfig(**values, push_to=str(tmp_path / "s"))

    def broken(experiment, config, combinations):
        raise OSError("No space left on device")

    monkeypatch.setattr(registry, "PUSH_EXPORTS", f"{__name__}:BROKEN")
    monkeypatch.setitem(globals(), "BROKEN", broken)
    runner.run(EXPERIMENT, config)
    summary = json.load(open(tmp_path / "run" / "results.json"))
    assert summary["results"] and (tmp_path / "run" / "results.md").exists()
    (push,) = summary["pushes"]
    assert push["pushed"] is False
    assert push["failed_checks"] == ["OSError: No space left on device"]
    assert runner.failed_pushes(summary) == [
        f"push of {push['combination']} failed: OSError: No space left on device"
    ]


def test_push_to_a_segmenter_scores_pixels_as_the_model_does(tmp_path):
    """Segmentation: the candidate's accuracy is the pixel accuracy of the run's saved
    model on the run's test set (numpy argmax here), per pixel, not per image."""
    out, serving = tmp_path / "run", tmp_path / "serving"
    config = smoke_config(
        ATTACK, out, padding_modes=("zero",), tasks=("segmentation",), export=True,
        push_to=str(serving),
    )  # fmt: skip
    runner.run(ATTACK, config)
    (push,) = json.load(open(out / "results.json"))["pushes"]
    assert push["pushed"], push
    lineage = json.load(open(serving / push["combination"] / "1" / LINEAGE))
    (combination,) = ATTACK.combinations(config)
    model = keras.saving.load_model(out / "models" / f"{combination.name}.keras")
    correct = total = images = 0
    for canvases, labels in ATTACK.evaluation_data(config, combination).pairs():
        pixels = np.clip(np.round(canvases.numpy()), 0, 255)
        predicted = np.argmax(np.asarray(model(pixels, training=False)), -1)
        correct += int(np.sum(predicted == labels.numpy()))
        total += labels.numpy().size
        images += len(labels)
    assert lineage["candidate"]["examples"] == images == config.test_examples
    assert lineage["candidate"]["accuracy"] == pytest.approx(100.0 * correct / total, abs=0.2)


def test_the_registry_finds_experiments_by_name():
    assert registry.experiment("channelwise") is EXPERIMENT
    assert registry.experiment("attack") is ATTACK
    with pytest.raises(ValueError, match="Received: experiment='nope'"):
        registry.experiment("nope")
    assert registry.resolve(registry.PUSH_EXPORTS).__name__ == "push_exports"
