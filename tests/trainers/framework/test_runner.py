import json
import os
import signal
import subprocess
import sys
import time

import keras
import pytest

from tests.trainers.framework.tiny_experiment import EXPERIMENT, TinyConfig
from trainers.framework import artifacts, cli, progress, runner
from trainers.framework.callbacks import NonFiniteLossError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def metrics(out):
    return [json.loads(line) for line in open(out / "metrics.jsonl")]


class Interrupt(keras.callbacks.Callback):
    """Stands for a kill at the end of an epoch, before that epoch's backup."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise KeyboardInterrupt


def test_runs_every_combination_then_resumes_without_work(tmp_path, capsys):
    config = TinyConfig(out=str(tmp_path))
    results = runner.run(EXPERIMENT, config)
    printed = capsys.readouterr().out
    assert "combination 1 of 2: tiny1 (elapsed 0s)" in printed
    assert "combination 2 of 2: tiny2 (elapsed" in printed and "left)" in printed
    assert [r["combination"] for r in results] == ["tiny1", "tiny2"]
    for r in results:
        assert r["epochs_trained"] == 3 and r["examples"] == 64 and 0 <= r["accuracy"] <= 100
        assert artifacts.exported(r["export"])
        assert os.path.isfile(tmp_path / "models" / f"{r['combination']}.keras")
    assert not (tmp_path / "checkpoints").exists()  # not even empty
    summary = json.load(open(tmp_path / "results.json"))
    assert summary["experiment"] == "tiny" and summary["results"] == results
    assert (
        (tmp_path / "results.md")
        .read_text()
        .startswith(
            "# tiny\n\n**What this run shows.** This experiment judges no claim automatically;"
        )
    )
    lines = len(metrics(tmp_path))
    again = runner.run(EXPERIMENT, config)
    assert "tiny1 (finished earlier)" in capsys.readouterr().out
    assert again == results and len(metrics(tmp_path)) == lines


def test_a_failed_preflight_leaves_nothing_and_the_fix_runs(tmp_path, monkeypatch):
    def broken(config, combination):
        raise ValueError("`units` cannot be built. Received: units=2")

    build = EXPERIMENT.build_model
    monkeypatch.setattr(
        EXPERIMENT, "build_model", lambda c, k: broken(c, k) if k.units == 2 else build(c, k)
    )
    with pytest.raises(ValueError, match="tiny2: `units` cannot be built"):
        runner.run(EXPERIMENT, TinyConfig(out=str(tmp_path / "run"), epochs=1))
    assert not (tmp_path / "run").exists()
    monkeypatch.undo()
    assert len(runner.run(EXPERIMENT, TinyConfig(out=str(tmp_path / "run"), epochs=1))) == 2


@pytest.mark.parametrize("fault", ["weights missing", "weights truncated", "metadata empty"])
def test_a_broken_backup_is_set_aside_and_the_combination_retrained(
    fault, tmp_path, monkeypatch, capsys
):
    config = TinyConfig(out=str(tmp_path), units=(1,))
    monkeypatch.setattr(EXPERIMENT, "callbacks", lambda *args: [Interrupt(2)])
    with pytest.raises(KeyboardInterrupt):
        runner.run(EXPERIMENT, config)
    monkeypatch.undo()
    state = tmp_path / "checkpoints" / "tiny1" / "backup" / "state"
    assert json.load(open(state / "training_metadata.json"))["epoch"] == 1
    weights = state / "latest.weights.h5"
    if fault == "weights missing":
        weights.unlink()
    elif fault == "weights truncated":
        weights.write_bytes(weights.read_bytes()[:200])
    else:
        (state / "training_metadata.json").write_text("")
    results = runner.run(EXPERIMENT, config)
    printed = capsys.readouterr().out
    assert (
        f"The backup {state} is unusable" in printed
        and "trains again from its first epoch" in printed
    )
    assert results[0]["epochs_trained"] == 3
    epochs = [line["epoch"] for line in metrics(tmp_path)]
    assert epochs == [1, 1, 2, 3]  # epoch 1 trained again: the broken backup was not used


def test_a_nan_loss_stops_the_run_and_reports_nothing(tmp_path, capsys, monkeypatch):
    data = EXPERIMENT.data

    def poisoned(config, combination):  # one NaN pixel: every loss from there on is NaN
        import numpy as np

        clean = data(config, combination)
        nan = np.zeros((4, 4, 3), "float32")
        nan[0, 0, 0] = np.nan
        clean.train = clean.train.map(lambda x, y: (x + nan, y))
        return clean

    monkeypatch.setattr(EXPERIMENT, "data", poisoned)
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(cli.main(EXPERIMENT, ["--out", str(tmp_path), "--units", "1"]))
    assert exit_info.value.code == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "tiny1: the training diverged (loss nan in epoch 1)" in error[0]
    for name in ("results", "results.json", "models", "exports", "metrics.jsonl"):
        assert not (tmp_path / name).exists()
    assert not (tmp_path / "checkpoints" / "tiny1" / "backup" / "state").exists()
    with pytest.raises(NonFiniteLossError):
        runner.run(EXPERIMENT, TinyConfig(out=str(tmp_path / "b"), units=(1,)))


def test_killed_during_export_reruns_to_a_servable_version(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    args = [
        sys.executable,
        "-m",
        "tests.trainers.framework.tiny_experiment",
        "--out",
        str(tmp_path),
        "--units",
        "1",
    ]
    base = tmp_path / "exports" / "tiny1"
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if base.is_dir() and any(n.startswith(".") for n in os.listdir(base)):
            break
        time.sleep(0.005)
    assert proc.poll() is None, proc.stdout.read()
    proc.send_signal(signal.SIGKILL)  # while the staging directory exists
    proc.wait()
    assert not any(n.isdigit() for n in os.listdir(base))
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert os.listdir(base) == ["1"] and (base / "1" / "saved_model.pb").is_file()
    assert json.load(open(tmp_path / "results.json"))["results"][0]["export"] == str(base)


def test_the_estimate_of_time_left_is_weighted_by_steps_and_input_size(
    tmp_path, monkeypatch, capsys
):
    """Combination 1: 3 epochs x 4 steps of 4x4 inputs (work 12 x sqrt(16) = 48);
    combination 2: the same steps on 8x8 inputs (work 12 x 8 = 96). If combination 1 took
    10 s, 96 / 48 x 10 = 20 s are left when combination 2 starts (a plain average per
    combination would say 10 s)."""
    from trainers.framework import experiment as experiment_lib

    monkeypatch.setattr(
        EXPERIMENT, "input_shape", lambda config, c: (4, 4, 3) if c.units == 1 else (8, 8, 3)
    )
    monkeypatch.setattr(
        EXPERIMENT, "budget", lambda config, c: experiment_lib.Budget(config.epochs, 4)
    )
    monkeypatch.setattr(EXPERIMENT, "check_model", lambda *args: None)  # only the sizes change
    clock = [1000.0]
    monkeypatch.setattr(runner.time, "time", lambda: clock[0])

    def fake_run(plan, combination, finished=None):
        clock[0] += 10.0
        return {"combination": combination.name, "epochs_trained": 3, "train_seconds": 10.0,
                "test_seconds": 0.0}  # fmt: skip

    monkeypatch.setattr(runner, "run_combination", fake_run)
    monkeypatch.setattr(EXPERIMENT, "report", lambda *args: ["# tiny"])
    config = TinyConfig(out=str(tmp_path), units=(1, 2))
    plan = runner.prepare(EXPERIMENT, config)
    assert [progress.work(EXPERIMENT, config, c) for c in plan.combinations] == [48, 96]
    runner.execute(plan)
    printed = capsys.readouterr().out
    assert "combination 1 of 2: tiny1 (elapsed 0s)" in printed
    assert "combination 2 of 2: tiny2 (elapsed 10s, about 20s left)" in printed
    assert progress.time_left(10.0, 48, 96) == 20.0 and progress.time_left(5.0, 0, 10) is None


def test_output_to_a_file_is_plain_lines_without_ansi_escapes(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    args = [sys.executable, "-m", "tests.trainers.framework.tiny_experiment", "--out",
            str(tmp_path / "run"), "--units", "1", "--verbose", "auto", "--no-export"]  # fmt: skip
    with open(tmp_path / "log.txt", "w") as log:
        done = subprocess.run(
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=180
        )
    text = (tmp_path / "log.txt").read_text()
    assert done.returncode == 0, text
    assert "\x1b" not in text and "\r" not in text, text
    assert "Epoch 3/3" in text  # one line per epoch
    assert "Warning" not in text and "warning" not in text, text
