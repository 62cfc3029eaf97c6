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

from tests.trainers.smoke import smoke_config, smoke_fixture
from trainers.channelwise import EXPERIMENT
from trainers.channelwise.config import ChannelwiseConfig, Combination
from trainers.channelwise.data import class_per_cell
from trainers.framework import artifacts, runner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def smoke(out, **overrides):
    return smoke_config(EXPERIMENT, out, **overrides)


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
        expected = (3e-3, 0.9) if r["network"] == "permutenet" else (1e-3, 0.5)
        assert (r["learning_rate"], r["beta_1"]) == pytest.approx(expected)
        (run,) = r["seeds"]
        assert run["seed"] == 0 and run["accuracy"] == r["accuracy"]
        assert 0 <= r["accuracy"] <= 100
        assert run["epochs_trained"] == 2 and run["examples"] == 24 * 4  # k^2 passes
        assert artifacts.exported(run["export"])
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


def record(network, accuracy, seed=0, k=3, task="location", mode="zero", sampling="stride"):
    """A per-seed result as the runner writes it."""
    combination = Combination(k, mode, network, task, sampling, seed)
    return {
        "combination": combination.name,
        **dataclasses.asdict(combination),
        "accuracy": accuracy,
        "chance": 100 / (k * k) if task == "location" else 10.0,
        "examples": 10,
        "feature_map_size": [2, 2],
        "steps": 60,
        "per_cell_accuracy": [[accuracy, None, 100.0]] + [[accuracy] * 3] * (k - 1),
        "epochs_trained": 2,
        "train_seconds": 1.5,
        "test_seconds": 0.5,
    }


def test_poster_numbers_only_beside_runs_that_match_them(tmp_path):
    results = [record(n, 55.5) for n in ("gapnet", "permutenet")]
    config = smoke(tmp_path, grid_sizes=(3,), dataset="cifar10", networks=("gapnet", "permutenet"))
    table = "\n".join(
        EXPERIMENT.report(config, EXPERIMENT.aggregate(config, results), str(tmp_path))
    )
    assert "55.5 (poster: 100)" in table and "55.5 (poster: 78.8)" in table
    assert "ICCV 2021 poster's ResNet-18 on CIFAR-10 (width 64" in table
    assert "11.1" in table  # chance at k=3
    assert (tmp_path / "heatmaps" / "k3-zero-gapnet-location.png").stat().st_size > 1000
    assert (tmp_path / "location_accuracy.png").stat().st_size > 1000
    for other in (dict(dataset="digits"), dict(dataset="cifar10", backbone="nin")):
        config = smoke(tmp_path, grid_sizes=(3,), networks=("gapnet", "permutenet"), **other)
        table = "\n".join(
            EXPERIMENT.report(config, EXPERIMENT.aggregate(config, results), str(tmp_path))
        )
        assert "55.5 |" in table and "(poster:" not in table
        assert "The poster's numbers (ResNet-18 on CIFAR-10) are not shown" in table


def test_seeds_give_mean_and_std_of_the_per_seed_results(tmp_path):
    accuracies = {"classifier": (97.0, 99.0, 100.0), "permutenet": (20.0, 31.0, 27.0)}
    per_seed = [
        record(n, a, seed) for n, values in accuracies.items() for seed, a in enumerate(values)
    ]
    config = smoke(tmp_path, grid_sizes=(3,), seeds=(0, 1, 2))
    results = EXPERIMENT.aggregate(config, per_seed)
    table = "\n".join(EXPERIMENT.report(config, results, str(tmp_path)))
    assert [r["combination"] for r in results] == [
        "k3-zero-classifier-location",
        "k3-zero-permutenet-location",
    ]
    for r in results:
        values = accuracies[r["network"]]
        assert [s["accuracy"] for s in r["seeds"]] == list(values)
        assert [s["seed"] for s in r["seeds"]] == [0, 1, 2]
        assert r["accuracy"] == pytest.approx(np.mean(values))
        assert r["accuracy_std"] == pytest.approx(np.std(values, ddof=1))
        assert r["padding_mode"] == "zero" and r["train_seconds"] == 4.5
        assert r["per_cell_accuracy"][0][1] is None
        assert r["per_cell_accuracy"][0][0] == pytest.approx(np.mean(values), abs=0.01)
    assert "98.7 ± 1.5" in table and "26.0 ± 5.6" in table
    assert "mean ± sample standard deviation over seeds 0, 1, 2" in table
    assert "| permutenet location at k = 5" not in table  # only targets this run can test


def test_combinations_per_seed_network_and_border_row():
    config = ChannelwiseConfig(
        grid_sizes=(3, 4),
        networks=("gapnet", "classifier"),
        tasks=("location",),
        seeds=(0, 1),
        border_grid_size=4,
    )
    names = [c.name for c in EXPERIMENT.combinations(config)]
    assert len(names) == len(set(names)) == 2 * (4 + 3)  # k=4 zero gapnet is not repeated
    assert "k3-zero-gapnet-location" in names and "k3-zero-gapnet-location-s1" in names
    assert "k4-circular-aps-gapnet-location-s1" in names
    assert "k4-circular-blur-gapnet-location" in names and "k4-circular-gapnet-location" in names
    none = dataclasses.replace(config, border_grid_size=None, seeds=(), seed=5)
    assert [c.name for c in EXPERIMENT.combinations(none)] == [
        f"k{k}-zero-{n}-location-s5" for k in (3, 4) for n in ("gapnet", "classifier")
    ]


def test_order_free_networks_get_their_own_budget():
    config = ChannelwiseConfig(epochs=2, order_free_epochs=9, order_free_learning_rate=0.004)
    fast, slow = (Combination(3, "zero", n, "class") for n in ("classifier", "permutenet"))
    budgets = [EXPERIMENT.budget(config, c) for c in (fast, slow)]
    assert [b.epochs for b in budgets] == [2, 9]
    for combination, rate, beta in ((fast, 1e-3, 0.5), (slow, 4e-3, 0.9)):
        optimizer = EXPERIMENT.optimizer(config, combination, budgets[0])
        assert float(np.asarray(optimizer.learning_rate)) == pytest.approx(rate)
        assert optimizer.beta_1 == pytest.approx(beta)
    with pytest.raises(ValueError, match="order_free_beta_1"):
        ChannelwiseConfig(order_free_beta_1=1.0)


def test_class_canvases_keep_their_cell_and_are_scored_per_cell(tmp_path):
    import keras

    config = smoke(tmp_path, grid_sizes=(3,), tasks=("class",), test_examples=40)
    combination = Combination(3, "zero", "classifier", "class")
    data = EXPERIMENT.data(config, combination)
    from tfposenc.data import info

    fill = 255 * np.array(info("digits").mean, "float32")
    for _ in range(2):  # placements are fresh on every pass; cells stay in step with them
        batches = zip(*data.test.as_numpy_iterator(), strict=True)
        canvases, classes, cells = (np.concatenate(t) for t in batches)
        assert len(cells) == 40 * 9 and set(cells) <= set(range(9))
        for canvas, cell in zip(canvases[:60], cells[:60], strict=True):  # the digit's cell
            row, col = divmod(int(cell), 3)
            inside = np.zeros((24, 24), bool)
            inside[row * 8 : row * 8 + 8, col * 8 : col * 8 + 8] = True
            assert np.allclose(canvas[~inside], fill) and not np.allclose(canvas[inside], fill)
    test = tf.data.Dataset.from_tensor_slices((canvases, classes, cells)).batch(64)
    inputs = keras.Input((24, 24, 3))  # always answers class 0
    logits = keras.layers.Dense(10, kernel_initializer="zeros", bias_initializer="zeros")(
        keras.layers.GlobalAveragePooling2D()(inputs)
    )
    model = keras.Model(inputs, logits + np.eye(10, dtype="float32")[0])
    values = dict(class_per_cell(model, test, 3))
    assert values["examples"] == 360
    assert values["accuracy"] == pytest.approx(100 * np.mean(classes == 0))
    for cell in range(9):
        expected = 100 * np.mean(classes[cells == cell] == 0)
        assert values["per_cell_accuracy"][cell // 3][cell % 3] == pytest.approx(expected, abs=0.01)


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
        f"k{grid_size}-{mode}-{n}-location" for n in ("classifier", "permutenet")
    ]


def test_border_rows_pass_the_preflight(tmp_path):
    config = smoke(tmp_path / "run", grid_sizes=(3,), networks=("gapnet",), border_grid_size=4)
    plan = runner.prepare(EXPERIMENT, config)
    assert [c.name for c in plan.combinations] == [
        "k3-zero-gapnet-location",
        "k4-zero-gapnet-location",
        "k4-circular-gapnet-location",
        "k4-circular-blur-gapnet-location",
        "k4-circular-aps-gapnet-location",
    ]
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "run").exists()
