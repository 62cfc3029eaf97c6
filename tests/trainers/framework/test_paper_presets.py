"""Every experiment's `--preset paper` runs end to end on tensorflow-datasets' mock data
(`tfds.testing.mock_data`: random images of the real datasets' shapes), with the paper's
architecture and geometry and only the counts shrunk (steps, test images, draws):
build, train (one step), evaluate (PermuteNet under 100 permutations), save, export,
report. All three run in the default suite (none is marked `slow`).

Measured on the shared 2-core development machine under `nice -n 19` at load average
6-9 (pytest's call time; one pytest, 2026-12-06): channel-wise 16-36 s (ResNet-18 width
64, 512 channels, 96-px canvases); shift invariance 69 s (Table 2's CIFAR-10 and
CIFAR-100 rows, ResNet-18 width 64 at 32 px, BlurPool + AugShift); the attack 231-417 s
(DeepLabv3-style ResNet-50, output stride 8, at 512 x 1024, and the ResNet-50 location
model on 160-px CIFAR-10 grids; alone: 158 CPU-s user + 20 s system). The three
together: 195 CPU-s user + 27 s system and 10.9 GB peak memory (the attack's 512 x 1024
training step); one ResNet-50-OS8 forward at 512 x 1024, batch 1, float32, takes ~4 s
at load 2 and ~20 s at load 8 (niced).
"""

import json

import keras
import numpy as np
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
    (seed,) = record["seeds"]  # the models are saved per seed: `<group>-seed<seed>`
    assert seed["combination"] == "k3-zero-permutenet-location-seed0"
    assert record["epochs_trained"] == 1 and seed["export"]
    model = keras.saving.load_model(tmp_path / "models" / f"{seed['combination']}.keras")
    assert model.pooled_features(np.zeros((1, 96, 96, 3), "float32")).shape == (1, 512)
    assert record["feature_map_size"] == [6, 6]  # the 96-px canvas at the last stage
    assert (tmp_path / "results.md").exists()


def test_shift_invariance_paper_preset_runs_end_to_end(tmp_path):
    """Table 2's CIFAR rows (CIFAR-10 and CIFAR-100, ResNet-18 width 64 at 32 px), the
    method with the most parts (BlurPool and AugShift)."""
    argv = ["--methods", "blurpool_augshift", "--epochs", "1", "--train-examples", "4"]
    argv += ["--batch-size", "4", "--test-examples", "4", "--holdout-examples", "2"]
    argv += ["--passes", "1", "--curve-passes", "1"]
    summary = run_paper(shift_invariance_main, tmp_path, argv)
    assert [r["dataset"] for r in summary["results"]] == ["cifar10", "cifar100"]
    assert all(r["examples"] == 4 and r["export"] for r in summary["results"])


def test_attack_paper_preset_runs_end_to_end(tmp_path):
    """DeepLabv3-style ResNet-50 (output stride 8, 2048 channels) on 512 x 1024 Cityscapes
    images and the location model (ResNet-50) on 5 x 5 CIFAR-10 grids (160 px): one
    training step each, then the whole attack on one test image (the location model: one
    image in each of the 25 cells) with the fewest draws the flags allow, and the
    untrained-backbone artifacts in one padding mode."""
    argv = ["--padding-modes", "zero", "--epochs", "1", "--location-epochs", "1"]
    argv += ["--train-examples", "1", "--location-train-examples", "1", "--batch-size", "1"]
    argv += ["--test-examples", "1", "--location-test-examples", "1", "--rank-examples", "1"]
    argv += ["--fractions", "0", "0.2", "--table-fractions", "0.2", "--claim-fractions", "0.2"]
    argv += ["--random-draws", "2", "--claim-draws", "2", "--figure-examples", "1"]
    argv += ["--artifact-inputs", "2", "--architecture-padding-modes", "zero", "--export"]
    summary = run_paper(attack_main, tmp_path, argv, examples=2)
    config = summary["config"]
    assert (config["backbone"], config["width"], config["output_stride"]) == ("resnet50", 64, 8)
    assert config["image_size"] == [512, 1024] and config["ranking"] == ["flip", "magnitude"]
    segmentation, location = summary["results"]
    assert (segmentation["padding_mode"], segmentation["task"]) == ("zero", "segmentation")
    assert (location["padding_mode"], location["task"]) == ("zero", "location")
    assert all(r["export"] and r["epochs_trained"] == 1 for r in summary["results"])
    name = segmentation["seeds"][0]["combination"]  # the model is saved per seed
    assert name == f"{segmentation['combination']}-seed0" == "zero-segmentation-seed0"
    segmenter = keras.saving.load_model(tmp_path / "models" / f"{name}.keras")
    assert segmenter.num_classes == 19  # Cityscapes' train ids
    assert (segmenter.backbone.output_channels, segmenter.backbone.output_stride) == (2048, 8)
    # 2048 channels: 20 % is 410 of them, removed by rank and by 2 random draws
    (ranked,) = [
        r for r in summary["sweep"]
        if (r["task"], r["selection"], r["fraction"], r["region"])
        == ("segmentation", "ranked", 0.2, "overall")
    ]  # fmt: skip
    assert ranked["num_channels"] == 410
    untrained = summary["architecture_artifacts"]
    assert {(a["padding"], a["task"]) for a in untrained} == {
        ("zero", "segmentation"), ("zero", "location")
    }  # fmt: skip
    assert summary["claims"] and (tmp_path / "qualitative-zero.png").exists()
