import dataclasses
import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from trainers import runner
from trainers.channelwise import EXPERIMENT, PRESETS, ChannelwiseConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def smoke(out, **overrides):
    values = dict(PRESETS["smoke"])
    values.update(out=str(out), **overrides)
    return ChannelwiseConfig(**values)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    start = time.time()
    results = runner.run(EXPERIMENT, smoke(out))
    return out, results, time.time() - start


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
    assert "| zero | gapnet |" in table and "chance" in table and "## Cost" in table
    assert (out / "location_accuracy.png").stat().st_size > 1000
    assert glob.glob(str(out / "heatmaps" / "*.png"))
    assert glob.glob(str(out / "models" / "*.keras"))
    for r in results:
        assert 0 <= r["accuracy"] <= 100
        assert r["epochs_trained"] == 2 and r["examples"] == 24 * 4  # k^2 passes
        assert runner.exported(r["export"])
        assert np.nansum(r["per_cell_accuracy"]) > 0


def test_tensorboard_scalars_and_images_are_readable(smoke_run):
    out, results, _ = smoke_run
    combo = results[0]["combination"]
    scalars, images = set(), set()
    for path in glob.glob(
        str(out / "tensorboard" / combo / "**" / "events.out.tfevents*"), recursive=True
    ):
        acc = event_accumulator.EventAccumulator(path, size_guidance={"tensors": 0, "images": 0})
        acc.Reload()
        tags = acc.Tags()
        scalars |= set(tags.get("scalars", [])) | set(tags.get("tensors", []))
        images |= set(tags.get("images", []))
        for tag in tags.get("tensors", []):
            if "image" in tag or tag in ("sample_canvases", "per_cell_location_accuracy"):
                images.add(tag)
    assert {"epoch_loss", "epoch_accuracy", "learning_rate"} <= scalars
    assert {"sample_canvases", "per_cell_location_accuracy"} <= images


def test_poster_numbers_are_labelled_not_reported(tmp_path):
    config = smoke(tmp_path, grid_sizes=(3,))
    fake = [
        {
            "combination": f"k3-zero-{n}-location",
            "grid_size": 3,
            "padding_mode": "zero",
            "network": n,
            "task": "location",
            "accuracy": 55.5,
            "chance": 100 / 9,
            "per_cell_accuracy": [[50.0, None, 100.0]] * 3,
        }
        for n in ("gapnet", "permutenet")
    ]
    table = "\n".join(EXPERIMENT.report(config, fake, str(tmp_path)))
    assert "55.5 (poster: 100)" in table and "55.5 (poster: 78.8)" in table
    assert "11.1" in table  # chance at k=3
    assert (tmp_path / "heatmaps" / "k3-zero-gapnet-location.png").stat().st_size > 1000
    assert (tmp_path / "location_accuracy.png").stat().st_size > 1000


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
    backup = tmp_path / "checkpoints" / "k2-zero-gapnet-location" / "backup" / "state"
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
from trainers import channelwise, runner
config = channelwise.ChannelwiseConfig(**{**channelwise.PRESETS["smoke"], "out": sys.argv[1],
    "networks": ("gapnet", "permutenet"), "epochs": 4, "strategy": "mirrored", "devices": ("/cpu:0", "/cpu:1"),
    "export": False, "learning_rate": 3e-3})
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


def test_strategy_and_precision_resolution():
    from trainers import core

    assert core.make_strategy("one_device").num_replicas_in_sync == 1
    assert core.resolve_precision("float32") == "float32"
    assert core.resolve_precision("auto") in ("mixed_bfloat16", "float32")
    with pytest.raises(ValueError, match="Received: strategy='tpu'"):
        core.make_strategy("tpu")
    with pytest.raises(ValueError, match="Received: precision='half'"):
        core.resolve_precision("half")
    assert tf.distribute.get_strategy().num_replicas_in_sync == 1


def test_a_failed_preflight_leaves_nothing_and_the_fix_runs(tmp_path):
    # 16x16 canvases (k=2, 8-px digits) shrink to 1x1 in stage 4: no reflect pad fits.
    config = smoke(tmp_path / "run", padding_modes=("zero", "reflect"), networks=("gapnet",))
    with pytest.raises(ValueError, match="k2-reflect-gapnet-location: .*reflect"):
        runner.run(EXPERIMENT, config)
    assert not (tmp_path / "run").exists()
    fixed = dataclasses.replace(config, padding_modes=("reflect",), grid_sizes=(4,), epochs=1)
    (result,) = runner.run(EXPERIMENT, fixed)
    assert result["combination"] == "k4-reflect-gapnet-location" and result["examples"] == 24 * 16


@pytest.mark.parametrize("grid_size, mode", [(4, "zero"), (3, "circular"), (5, "replicate")])
def test_any_grid_size_and_padding_mode_passes_the_preflight(grid_size, mode, tmp_path):
    config = smoke(tmp_path / "run", grid_sizes=(grid_size,), padding_modes=(mode,))
    plan = runner.prepare(EXPERIMENT, config)
    assert [c.name for c in plan.combinations] == [
        f"k{grid_size}-{mode}-{n}-location" for n in ("gapnet", "permutenet")
    ]
    assert not (tmp_path / "run").exists()
