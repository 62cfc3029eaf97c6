"""Runs of the command line and the runner: resume after a kill, MirroredStrategy, preflight."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.trainers.smoke import smoke_config
from trainers.channelwise import EXPERIMENT
from trainers.framework import runner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def smoke(out, **overrides):
    return smoke_config(EXPERIMENT, out, **overrides)


def run_cli(args, **kwargs):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the command line sets it
    return subprocess.Popen(
        [sys.executable, "-m", "trainers.channelwise", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def test_killed_run_resumes_without_losing_or_repeating_epochs(tmp_path):
    args = [
        "--preset",
        "smoke",
        "--out",
        str(tmp_path),
        "--networks",
        "gapnet",
        "--epochs",
        "3",
        "--train-examples",
        "480",
        "--no-export",
    ]
    metrics = tmp_path / "metrics.jsonl"
    backup = tmp_path / "checkpoints" / "k2-zero-gapnet-location-seed0" / "backup" / "state"
    proc = run_cli(args)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (backup / "training_metadata.json").exists():  # epoch 1 is committed
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.stdout.read()
    proc.send_signal(signal.SIGKILL)  # in the second epoch
    proc.wait()
    assert not (tmp_path / "results.json").exists()
    proc = run_cli(args)
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, output
    epochs = [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()]
    assert sorted(set(epochs)) == [1, 2, 3]
    assert epochs[0] == 1 and epochs.count(1) == 1
    result = json.load(open(tmp_path / "results.json"))["results"][0]
    assert result["epochs_trained"] == 3
    assert "combination 1 of 1" in output


MIRRORED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from trainers import channelwise\nfrom trainers.channelwise.config import ChannelwiseConfig, PRESETS\nfrom trainers.framework import runner
config = ChannelwiseConfig(**{**PRESETS["smoke"], "out": sys.argv[1],
    "networks": ("gapnet", "permutenet"), "epochs": 4, "strategy": "mirrored", "devices": ("/cpu:0", "/cpu:1"),
    "export": False, "learning_rate": 3e-3, "order_free_epochs": 4})
results = runner.run(channelwise.EXPERIMENT, config)
print("REPLICAS", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).num_replicas_in_sync)
"""


def test_mirrored_strategy_over_two_cpus(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "REPLICAS 2" in done.stdout
    assert "2 replica(s)" in done.stdout
    lines = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert len(lines) == 8 and all(np.isfinite(line["loss"]) for line in lines)
    gapnet = [line["loss"] for line in lines if line["network"] == "gapnet"]
    assert gapnet[-1] < gapnet[0]
    results = json.load(open(tmp_path / "results.json"))["results"]
    assert len(results) == 2 and all(0 <= r["accuracy"] <= 100 for r in results)


def test_a_failed_preflight_leaves_nothing_and_the_fix_runs(tmp_path):
    # 16x16 canvases (k=2, 8-px digits) shrink to 1x1 in stage 4: no reflect pad fits.
    config = smoke(tmp_path / "run", padding_modes=("zero", "reflect"), networks=("gapnet",))
    with pytest.raises(ValueError, match="k2-reflect-gapnet-location-seed0: .*reflect"):
        runner.run(EXPERIMENT, config)
    assert not (tmp_path / "run").exists()
    fixed = dataclasses.replace(config, padding_modes=("reflect",), grid_sizes=(4,), epochs=1)
    (result,) = runner.run(EXPERIMENT, fixed)
    assert (
        result["combination"] == "k4-reflect-gapnet-location-seed0"
        and result["examples"] == 24 * 16
    )


@pytest.mark.parametrize("grid_size, mode", [(4, "zero"), (3, "circular"), (5, "replicate")])
def test_any_grid_size_and_padding_mode_passes_the_preflight(grid_size, mode, tmp_path):
    config = smoke(tmp_path / "run", grid_sizes=(grid_size,), padding_modes=(mode,))
    plan = runner.prepare(EXPERIMENT, config)
    assert [c.name for c in plan.combinations] == [
        f"k{grid_size}-{mode}-{n}-location-seed0" for n in ("classifier", "permutenet")
    ]


def test_border_rows_pass_the_preflight(tmp_path):
    config = smoke(tmp_path / "run", grid_sizes=(3,), networks=("gapnet",), border_grid_size=4)
    plan = runner.prepare(EXPERIMENT, config)
    assert [c.name for c in plan.combinations] == [
        "k3-zero-gapnet-location-seed0",
        "k4-zero-gapnet-location-seed0",
        "k4-circular-gapnet-location-seed0",
        "k4-circular-blur-gapnet-location-seed0",
        "k4-circular-aps-gapnet-location-seed0",
    ]
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "run").exists()
