"""Every experiment's `--preset paper` runs end to end on tensorflow-datasets' mock data
(`tfds.testing.mock_data`: random images of the real datasets' shapes), with the paper's
architecture and geometry and only the counts shrunk (steps, test images, draws):
build, train, evaluate (PermuteNet under 100 permutations), save, export, report.

Measured on the shared 2-core development machine (load average 7-12): channel-wise
132 s for one combination (ResNet-18 width 64, 512 channels, 96-px canvases); the
shift-invariance CIFAR rows ~110 s per combination; the attack's DeepLabv3-style
ResNet-50 at 512 x 1024 did not finish one combination in 13 min. The two slow ones
are marked `slow` (`pytest -m slow`); the smoke presets are their fast versions.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

from trainers.attack import main as attack_main
from trainers.channelwise import main as channelwise_main
from trainers.shift_invariance import main as shift_invariance_main


def run_paper(main, out, argv, examples=8):
    with tfds.testing.mock_data(num_examples=examples):
        code = main(["--preset", "paper", "--out", str(out), "--verbose", "0", *argv])
    assert code == 0
    return json.load(open(out / "results.json"))


def test_channelwise_paper_preset_runs_end_to_end(tmp_path):
    """ResNet-18 width 64 (512 pooled channels) on 3 x 3 CIFAR-10 canvases (96 px)."""
    argv = ["--grid-sizes", "3", "--padding-modes", "zero", "--networks", "permutenet"]
    argv += ["--tasks", "location", "--epochs", "1", "--train-examples", "4"]
    argv += ["--batch-size", "4", "--test-examples", "2", "--eval-batch-size", "18"]
    argv += ["--validation-examples", "2"]  # the mock split holds 8 images
    summary = run_paper(channelwise_main, tmp_path, argv)
    assert summary["config"]["width"] == 64 and summary["config"]["dataset"] == "cifar10"
    (record,) = summary["results"]
    assert record["combination"] == "k3-zero-permutenet-location"
    assert record["permutations"] == 100 and record["examples"] == 2 * 9
    assert record["epochs_trained"] == 1 and record["seeds"][0]["export"]
    model = keras.saving.load_model(tmp_path / "models" / f"{record['combination']}.keras")
    assert model.pooled_features(np.zeros((1, 96, 96, 3), "float32")).shape == (1, 512)
    assert record["feature_map_size"] == [6, 6]  # the 96-px canvas at the last stage
    assert (tmp_path / "results.md").exists()


@pytest.mark.slow
def test_shift_invariance_paper_preset_runs_end_to_end(tmp_path):
    """Table 2's CIFAR rows (CIFAR-10 and CIFAR-100, ResNet-18 width 64 at 32 px), the
    method with the most parts (BlurPool and AugShift)."""
    argv = ["--methods", "blurpool_augshift", "--epochs", "1", "--train-examples", "4"]
    argv += ["--batch-size", "4", "--test-examples", "4", "--holdout-examples", "2"]
    argv += ["--passes", "1", "--curve-passes", "1"]
    summary = run_paper(shift_invariance_main, tmp_path, argv)
    assert [r["dataset"] for r in summary["results"]] == ["cifar10", "cifar100"]
    assert all(r["examples"] == 4 and r["export"] for r in summary["results"])


@pytest.mark.slow
def test_attack_paper_preset_runs_end_to_end(tmp_path):
    """DeepLabv3-style ResNet-50 (output stride 8) on 512 x 1024 Cityscapes images."""
    argv = ["--padding-modes", "zero", "--tasks", "segmentation", "--epochs", "1"]
    argv += ["--train-examples", "1", "--batch-size", "1", "--eval-batch-size", "1"]
    argv += ["--test-examples", "1", "--rank-examples", "1", "--random-draws", "2"]
    argv += ["--fractions", "0", "0.2", "--table-fractions", "0.2", "--claim-fractions", "0.2"]
    argv += ["--figure-examples", "1", "--artifact-inputs", "2", "--export"]
    summary = run_paper(attack_main, tmp_path, argv, examples=2)
    (record,) = summary["results"]
    assert record["combination"] == "zero-segmentation" and record["export"]
    assert summary["claims"] and summary["architecture_artifacts"]
