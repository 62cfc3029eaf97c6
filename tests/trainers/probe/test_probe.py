import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import trainers.probe.hooks as probe_hooks
import trainers.probe.models as probe_models
from trainers.probe import PRESETS, ProbeConfig, main
from trainers.probe.config import Combination
from trainers.probe.report import wilson_interval

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
FAST = ["--input-size", "16", "--grid-size", "2", "--images", "10", "--steps", "3"]
FAST += ["--batch-size", "8", "--verbose", "0"]


def save(model, path):
    model.save(path)
    return str(path)


def tiny_model(tmp_path, channels=3, name="tiny.keras"):
    inputs = keras.Input((16, 16, channels))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    return save(keras.Model(inputs, keras.layers.Conv2D(16, 3, padding="same")(x)), tmp_path / name)


def events(folder):
    """`{tag: [values]}` of the scalar summaries under `folder`, and the plugins seen."""
    tags, plugins = {}, set()
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not name.startswith("events."):
            continue
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                plugins.add(value.metadata.plugin_data.plugin_name)
                tensor = tf.make_ndarray(value.tensor) if value.HasField("tensor") else None
                if tensor is not None and tensor.shape == () and tensor.dtype.kind == "f":
                    tags.setdefault(value.tag, []).append(float(tensor))
    return tags, plugins


def test_a_model_and_its_conversion_on_the_framework(tmp_path, capsys):
    out = tmp_path / "run"
    model = tiny_model(tmp_path)
    argv = ["--model", model, *FAST, "--pretrain-steps", "2", "--out", str(out)]
    code = main([*argv, "--convert-padding-mode", "circular", "--convert-downsampling", "aps"])
    assert code == 0
    for name in ("config.json", "metrics.jsonl", "results.json", "results.md", "probe.png"):
        assert (out / name).exists(), name
    results = json.loads((out / "results.json").read_text())
    assert results["experiment"] == "probe" and results["config"]["model"] == model
    original, converted = results["results"]  # one record per model over its seeds
    assert [original["combination"], converted["combination"]] == ["original", "circular-aps"]
    assert [r["combination"] for r in converted["seeds"]] == ["circular-aps-seed0"]
    assert original["conversion"] == [] and converted["conversion"]
    assert original["epochs_trained"] == 1 and original["steps"] == 2
    for record in results["results"]:
        assert record["examples"] == 2 * 4  # 2 test images (20 % of 10) in 4 cells
        for readout in ("classifier", "permutenet", "gapnet"):
            for target in ("location", "class"):
                value = record[f"{readout}_{target}"]
                low, high = record["intervals"][f"{readout}_{target}"]
                oracle = wilson_interval(round(value / 100 * 8), 8)
                assert (low, high) == (round(100 * oracle[0], 2), round(100 * oracle[1], 2))
        assert record["chance"] == {"location": 25.0, "class": 10.0}
    report = (out / "results.md").read_text()
    assert "Test: 2 held-out digit images, each in every cell: 8 test canvases" in report
    assert "| circular-aps | 0 | classifier |" in report and "## Conversion report" in report
    assert "95 % Wilson intervals" in report
    tags, _ = events(out / "tensorboard" / "circular-aps-seed0")
    assert tags["test/classifier_location"] == [converted["classifier_location"]]
    assert "ablation/location_vs_channels_removed" in tags
    _, plugins = events(out / "tensorboard" / "report")
    assert "hparams" in plugins  # the report run's hparams table
    printed = capsys.readouterr().out
    assert "combination 2 of 2: circular-aps-seed0" in printed and "# Position probe" in printed


class Killed(BaseException):
    """Stands for a SIGKILL (the slow test below sends a real one)."""


def test_a_run_stopped_after_its_first_combination_resumes(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    argv = ["--model", tiny_model(tmp_path), *FAST, "--pretrain-steps", "0", "--out", str(out)]
    argv += ["--convert-padding-mode", "reflect"]
    evaluate = probe_hooks.evaluate

    def killed_at_the_second(config, combination, *args):
        if combination.variant != "original":
            raise Killed()
        yield from evaluate(config, combination, *args)

    monkeypatch.setattr(probe_hooks, "evaluate", killed_at_the_second)
    with pytest.raises(Killed):
        main(argv)
    first = (out / "results" / "original-seed0.json").read_text()
    assert not (out / "results.json").exists()
    monkeypatch.setattr(probe_hooks, "evaluate", evaluate)
    capsys.readouterr()
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"resuming {out}: 1 of 2 combinations finished earlier (original-seed0)" in printed
    assert "original-seed0 (finished earlier)" in printed
    assert (out / "results" / "original-seed0.json").read_text() == first
    results = json.loads((out / "results.json").read_text())
    assert [r["variant"] for r in results["results"]] == ["original", "reflect-stride"]


@pytest.mark.slow
def test_a_probe_killed_after_its_first_combination_resumes(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "trainers.probe", "--model", tiny_model(tmp_path), *FAST]
    command += ["--steps", "300", "--convert-padding-mode", "circular", "--out", str(out)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / "results" / "original-seed0.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "results.json").exists()
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stdout and "original-seed0 (finished earlier)" in again.stdout
    assert len(json.loads((out / "results.json").read_text())["results"]) == 2


def test_seeds_are_combinations_and_the_report_averages_them(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--model", tiny_model(tmp_path), *FAST, "--pretrain-steps", "0"]
    assert main([*argv, "--seeds", "1", "2", "--readouts", "classifier", "--out", str(out)]) == 0
    (row,) = json.loads((out / "results.json").read_text())["results"]
    records = row["seeds"]
    assert row["combination"] == "original"
    assert [r["combination"] for r in records] == ["original-seed1", "original-seed2"]
    values = [r["classifier_location"] for r in records]
    mean = sum(values) / 2
    std = math.sqrt(sum((v - mean) ** 2 for v in values))  # n - 1 = 1
    assert row["classifier_location"] == pytest.approx(mean)
    assert row["classifier_location_std"] == pytest.approx(std)
    assert f"| original | classifier | {mean:.1f} ± {std:.1f} |" in (out / "results.md").read_text()


def test_wilson_interval_against_textbook_values_and_its_definition():
    # Wilson (1927) 95 % intervals, as tabulated (e.g. Newcombe 1998, Table I).
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    # Its definition: the p whose normal test accepts the observed share at the edge.
    low, high = wilson_interval(37, 90)
    for p in (low, high):
        assert abs(37 / 90 - p) == pytest.approx(1.959964 * math.sqrt(p * (1 - p) / 90))
    with pytest.raises(ValueError, match="Received: 11 of 10"):
        wilson_interval(11, 10)


def test_presets_hold_no_model_specific_arguments(tmp_path):
    for name, preset in PRESETS.items():
        assert not {"model_kwargs", "weights"} & set(preset), name
    config = ProbeConfig(**{**PRESETS["smoke"], "model": "keras.applications.ResNet101"})
    task, changes = probe_hooks.build_model(config, Combination("original", 0))
    assert changes == [] and task.backbone.output_channels == 2048


def test_help_lists_every_flag_with_its_default_and_a_description():
    result = subprocess.run(
        [sys.executable, "-m", "trainers.probe", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and not result.stderr
    text = " ".join(result.stdout.split())

    for field in dataclasses.fields(ProbeConfig):
        flag = "--" + field.name.replace("_", "-")
        assert flag in text, flag
        after = text.split(flag + " ", 1)[1] if flag + " " in text else ""
        help_text = after.split("(default:", 1)[0]
        assert "(default:" in after and len(help_text.split()) >= 3, (flag, after[:120])


def test_help_and_parsing_do_not_import_tensorflow():
    code = "import sys, trainers.probe; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.strip() == "False"


def garbage(tmp_path):
    path = tmp_path / "garbage.keras"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    return str(path)


def broken_archive(tmp_path):
    path = tmp_path / "broken.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{not json")
    return str(path)


def dense_model(tmp_path):
    inputs = keras.Input((10,))
    return save(keras.Model(inputs, keras.layers.Dense(3)(inputs)), tmp_path / "dense.keras")


def two_inputs(tmp_path):
    a, b = keras.Input((16, 16, 3)), keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3)(keras.layers.Add()([a, b]))
    return save(keras.Model([a, b], x), tmp_path / "two.keras")


def flat_model(tmp_path):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Dense(3)(keras.layers.Flatten()(inputs))
    return save(keras.Model(inputs, x), tmp_path / "flat.keras")


def fixed_size(tmp_path):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.Dense(3)(keras.layers.Flatten()(x))
    return save(keras.Model(inputs, x), tmp_path / "fixed.keras")


def stride_3(tmp_path):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, strides=3, padding="same")(inputs)
    return save(keras.Model(inputs, x), tmp_path / "stride3.keras")


# (files made in tmp_path, argv, the flag named, a phrase of the answer)
BAD = {
    "garbage .keras": (garbage, ["--model", "{}"], "--model", "not a Keras model file"),
    "broken archive": (broken_archive, ["--model", "{}"], "--model", "cannot be loaded"),
    "dense model": (dense_model, ["--model", "{}"], "--model", "must take images"),
    "two inputs": (two_inputs, ["--model", "{}"], "--model", "with 2 inputs"),
    "1 channel": (
        lambda p: tiny_model(p, channels=1),
        ["--model", "{}"],
        "--model",
        "must take RGB images",
    ),
    "no feature map": (flat_model, ["--model", "{}"], "--model", "4D"),
    "fixed size": (fixed_size, ["--model", "{}", "--input-size", "32"], "--input-size", "16 x 16"),
    "missing file": (lambda p: str(p / "nope.keras"), ["--model", "{}"], "--model", "no such file"),
    "not a model spec": (lambda p: "weights.h5", ["--model", "{}"], "--model", "PATH.keras"),
    "unknown application": (
        lambda p: "keras.applications.NoSuchNet",
        ["--model", "{}"],
        "--model",
        "no 'NoSuchNet'",
    ),
    "kwargs not an object": (lambda p: "[1]", ["--model-kwargs", "{}"], "--model-kwargs", "JSON"),
    "kwargs for a file": (
        tiny_model,
        ["--model", "{}", "--model-kwargs", '{"alpha": 0.35}'],
        "--model-kwargs",
        "keras.applications models only",
    ),
    "kwargs refused": (
        lambda p: "keras.applications.MobileNetV3Small",
        ["--model", "{}", "--input-size", "32", "--model-kwargs", '{"bogus": 1}'],
        "--model-kwargs",
        "bogus",
    ),
    "input too small": (
        lambda p: "keras.applications.MobileNetV3Small",
        ["--model", "{}", "--input-size", "8"],
        "--input-size",
        "at least 32x32",
    ),
    "weights file missing": (
        lambda p: "/no/such/weights.h5",
        ["--model", "keras.applications.MobileNetV3Small", "--input-size", "32", "--weights", "{}"],
        "--weights",
        "imagenet, none or a file",
    ),
    "weights for a file": (
        tiny_model,
        ["--model", "{}", "--weights", "imagenet"],
        "--weights",
        "keras.applications models only",
    ),
    "too many images": (lambda p: "1000", ["--images", "{}"], "--images", "at most 360"),
    "aps on stride 3": (
        stride_3,
        ["--model", "{}", "--convert-downsampling", "aps"],
        "--convert-downsampling",
        "strides=3",
    ),
    "push": (lambda p: str(p / "serving"), ["--push-to", "{}"], "--push-to", "does not apply"),
    "repeated seeds": (lambda p: "0", ["--seeds", "{}", "0"], "--seeds", "repeat"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_exit_2_and_no_run_directory(case, tmp_path, capsys):
    make, argv, flag, phrase = BAD[case]
    value = make(tmp_path)
    out = tmp_path / "run"
    argv = [a.replace("{}", value) for a in argv]
    base = FAST if "--input-size" not in argv else FAST[2:]
    with pytest.raises(SystemExit) as exit_info:
        main([*base, "--pretrain-steps", "0", *argv, "--out", str(out)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2
    assert len(lines) == 1 and f"argument {flag}:" in lines[0] and phrase in lines[0], lines
    assert not out.exists()


def test_imagenet_weights_without_network_fail_at_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(probe_models, "imagenet_reachable", lambda name: False)
    with pytest.raises(SystemExit) as exit_info:
        main(["--preset", "smoke", "--weights", "imagenet", "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--weights" in error[0] and "network" in error[0]
    assert not (tmp_path / "run").exists()


def test_a_garbage_model_file_gets_one_line_and_no_tensorflow_log(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "trainers.probe", "--model", garbage(tmp_path)]
    # As a user starts it: main sets these (an in-process run of main left them set here).
    quiet = ("TF_CPP_MIN_LOG_LEVEL", "TFPOSENC_USER_TF_LOG_LEVEL")
    env = {k: v for k, v in os.environ.items() if k not in quiet}
    result = subprocess.run(
        [*command, "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "argument --model:" in lines[0], result.stderr
    assert not out.exists()
