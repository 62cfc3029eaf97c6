"""What the attack reads: its canvases (ranked on training digits, judged on test digits,
flipped with their label maps), a channelwise run's models, its config and presets."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.trainers.smoke import smoke_config
from tfposenc.data import load_digits_arrays
from trainers.attack import EXPERIMENT
from trainers.attack.config import AttackConfig, Combination
from trainers.framework import cli, runner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def smoke(out, **overrides):
    return smoke_config(EXPERIMENT, out, **overrides)


def _digit_set(split):
    images, _ = load_digits_arrays(split)
    return {image.tobytes() for image in images.astype("float32")}


@pytest.mark.parametrize("task", ["segmentation", "location"])
def test_channels_are_ranked_on_training_canvases_and_judged_on_test_canvases(tmp_path, task):
    config = smoke(tmp_path)
    data = EXPERIMENT.data(config, Combination("zero", task))
    train, test = _digit_set("train"), _digit_set("test")
    cell, k = 8, config.grid_size if task == "segmentation" else config.location_grid_size
    for dataset, allowed in ((data.extra["ranking"], train), (data.test, test)):
        canvases = np.concatenate([images.numpy() for images, _ in dataset])
        found = 0
        for canvas in canvases:
            for row in range(k):
                for col in range(k):
                    patch = canvas[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell]
                    if task == "location" and np.ptp(patch) == 0:
                        continue  # an empty cell of the mean colour
                    assert patch.tobytes() in allowed
                    found += 1
        assert found >= len(canvases)


def _channelwise_run(folder, cell_size=None):
    from tfposenc.data import info
    from tfposenc.models import GAPNet, build_backbone

    meta = info("digits")
    backbone = build_backbone("resnet18", width=4, input_shape=(24, 24, 3))
    os.makedirs(folder / "models")
    GAPNet(backbone, 9, mean=meta.mean, std=meta.std).save(
        folder / "models" / "k3-zero-gapnet-location-seed0.keras"
    )
    with open(folder / "config.json", "w") as f:
        json.dump({"experiment": "channelwise", "dataset": "digits", "cell_size": cell_size}, f)


def test_models_of_a_channelwise_run_are_loaded_not_trained(tmp_path):
    _channelwise_run(tmp_path / "cw")
    config = smoke(tmp_path / "out", tasks=("location_gapnet",), padding_modes=("zero",),
                   models=str(tmp_path / "cw"))  # fmt: skip
    (result,) = runner.run(EXPERIMENT, config)
    assert result["source"].endswith("k3-zero-gapnet-location-seed0.keras")
    assert result["epochs_trained"] == 0
    assert json.load(open(tmp_path / "out" / "results.json"))["sweep"]


def test_models_flag_errors_name_the_problem(tmp_path):
    _channelwise_run(tmp_path / "cw", cell_size=16)
    with pytest.raises(SystemExit) as error:
        cli.main(EXPERIMENT, ["--preset", "smoke", "--out", str(tmp_path / "a"),
                              "--models", str(tmp_path / "cw")])  # fmt: skip
    assert error.value.code == 2
    with pytest.raises(ValueError, match="holds no k3-circular-classifier-location-seed0.keras"):
        config = smoke(tmp_path / "b", models=str(tmp_path / "cw"), location_cell_size=16)
        EXPERIMENT.load_path(config, Combination("circular", "location"))
    with pytest.raises(ValueError, match="`models` must be a run directory"):
        smoke(tmp_path / "c", models=str(tmp_path))
    assert not (tmp_path / "a").exists()


def test_bad_config_values_are_rejected():
    with pytest.raises(ValueError, match="`output_stride` must be 8 or 16"):
        AttackConfig(output_stride=4)
    with pytest.raises(ValueError, match="`fractions` must be in"):
        AttackConfig(fractions=(0.0, 1.5))
    with pytest.raises(ValueError, match="`ranking` must be one of"):
        AttackConfig(ranking=("random",))
    with pytest.raises(ValueError, match="`ranking` must name distinct methods"):
        AttackConfig(ranking=("flip", "flip"))


def test_paper_preset_fails_fast_with_instructions_when_cityscapes_is_absent(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT)
    args = ["--preset", "paper", "--out", str(tmp_path / "run"), "--data-dir", str(tmp_path)]
    start = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "trainers.attack", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "cityscapes" in proc.stderr and "gtFine_trainvaltest.zip" in proc.stderr
    assert "--dataset" in proc.stderr
    assert time.time() - start < 60
    assert not (tmp_path / "run").exists()


def test_training_canvases_are_flipped_with_their_label_maps(tmp_path):
    config = smoke(tmp_path)
    images, _ = load_digits_arrays("train")
    plain = {image.astype("float32").tobytes() for image in images}
    mirrored = {image[:, ::-1].astype("float32").tobytes() for image in images} - plain
    counts = {"plain": 0, "mirrored": 0}
    train = EXPERIMENT.data(config, Combination("zero", "segmentation")).train
    for canvases, label_maps in train.take(2):
        for canvas, label_map in zip(canvases.numpy(), label_maps.numpy()):
            ink = canvas.mean(axis=-1) >= 128  # the label map follows the pixels it labels
            np.testing.assert_array_equal(label_map != 10, ink)
            for row in range(3):
                for col in range(3):
                    patch = canvas[row * 8 : (row + 1) * 8, col * 8 : (col + 1) * 8].tobytes()
                    counts["plain" if patch in plain else "mirrored"] += 1
                    assert patch in plain or patch in mirrored
    assert counts["plain"] and counts["mirrored"]
