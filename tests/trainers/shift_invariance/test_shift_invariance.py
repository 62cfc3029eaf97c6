import dataclasses
import glob
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from tests.trainers.smoke import smoke_config, smoke_fixture
from tfposenc.export import signature_defs
from tfposenc.models import AugShift, Classifier
from tfposenc.vocabulary import PADDING_MODES
from trainers.framework import artifacts, runner
from trainers.shift_invariance import EXPERIMENT
from trainers.shift_invariance.config import METHODS, ShiftInvarianceConfig


def smoke(out, **overrides):
    return smoke_config(EXPERIMENT, out, **overrides)


smoke_run = smoke_fixture(EXPERIMENT)


def test_smoke_writes_table_curve_records_and_exports(smoke_run):
    out, results, seconds = smoke_run
    assert seconds < 300  # ~40 s on 2 idle cores; 235 s measured at load average 12
    records = json.load(open(out / "results.json"))["results"]
    assert [r["method"] for r in records] == ["baseline", "augshift", "aps"]
    for r in records:
        assert r["seed"] == 0 and r["dataset"] == "digits" and r["examples"] == 32
        for key in ("top1", "cons8", "cons16", "circular_consistency"):
            assert 0 <= r[key] <= 100
        assert r["step_seconds"] > 0
        assert sorted(map(int, r["curve"])) == list(range(1, 17))
        assert r["curve"]["8"] == r["cons8"] and r["curve"]["16"] == r["cons16"]
        assert r["curve"]["1"] == 100.0  # Cons.1: both views are the image itself
        assert artifacts.exported(r["export"])
        signatures = signature_defs(glob.glob(r["export"] + "/*")[0])
        assert {"serving_default", "pooled_features"} <= set(signatures)  # a Classifier
        model = keras.saving.load_model(out / "models" / f"{r['combination']}.keras")
        assert type(model) is Classifier
    # APS with circular padding is exactly invariant to circular shifts, trained or not.
    assert records[2]["circular_consistency"] == 100.0
    table = (out / "results.md").read_text()
    assert "| augshift |" in table and "| aps |" in table and "## Cost" in table
    assert "Cons.16" in table and "not shown" in table and "93.1" not in table
    assert (out / "consistency_vs_shift_digits.png").stat().st_size > 1000


def test_augshift_logs_latent_norm_with_both_loss_terms(smoke_run):
    out, _, _ = smoke_run
    tags = set()
    for path in glob.glob(
        str(out / "tensorboard" / "digits-augshift-seed0" / "**" / "events.out.tfevents*"),
        recursive=True,
    ):
        acc = event_accumulator.EventAccumulator(path, size_guidance={"tensors": 0})
        acc.Reload()
        tags |= set(acc.Tags().get("scalars", [])) | set(acc.Tags().get("tensors", []))
    assert {"epoch_latent_norm", "epoch_consistency", "epoch_cross_entropy"} <= tags
    assert {"epoch_loss", "epoch_accuracy", "learning_rate"} <= tags


def fake(dataset, method, seed, top1, step=0.1):
    curve = {str(m): 100.0 - m for m in range(1, 17)}
    return dict(
        combination=f"{dataset}-{method}-seed{seed}",
        dataset=dataset,
        method=method,
        seed=seed,
        top1=top1,
        cons8=92.0,
        cons16=84.0,
        circular_consistency=50.0,
        step_seconds=step,
        curve=curve,
    )


def test_report_mean_std_and_poster_only_where_setup_matches(tmp_path):
    config = smoke(tmp_path, dataset=("cifar10", "digits"), width=64, image_size=32)
    results = [
        fake("cifar10", "baseline", 0, 90.0, 0.1),
        fake("cifar10", "baseline", 1, 92.0, 0.1),
        fake("cifar10", "augshift", 0, 91.0, 0.2),
        fake("cifar10", "augshift", 1, 91.0, 0.2),
        fake("digits", "baseline", 0, 99.0),
    ]
    text = "\n".join(EXPERIMENT.report(config, results, str(tmp_path)))
    std = np.std([90.0, 92.0], ddof=1)
    assert f"| baseline | 91.0 ± {std:.1f} | 92.0 ± 0.0 |" in text
    assert "| 1.00x | 93.1 / 90.8 | 91.6 / 87.4 |" in text  # poster, then the rerun
    assert "| 2.00x | 92.1 / 94.8 |" in text
    assert "## cifar10 (seeds 0, 1; mean +/- std)" in text and "`poster`" in text
    digits = text.split("## digits")[1]
    assert "not shown" in digits and "| baseline | 99.0 |" in digits and "93.1" not in digits
    assert (tmp_path / "consistency_vs_shift_cifar10.png").stat().st_size > 1000
    # Width 16 on CIFAR-10 is not the poster's network: no poster column.
    narrow = "\n".join(
        EXPERIMENT.report(smoke(tmp_path, dataset=("cifar10",)), results[:2], str(tmp_path))
    )
    assert "93.1" not in narrow and "not shown" in narrow


def test_combinations_models_and_config_checks(tmp_path):
    config = smoke(tmp_path / "run", methods=METHODS, seeds=(3, 4))
    names = [c.name for c in EXPERIMENT.combinations(config)]
    assert len(names) == 12 and names[:2] == ["digits-baseline-seed3", "digits-baseline-seed4"]
    kinds = {}
    for combination in EXPERIMENT.combinations(config)[::2]:
        model = EXPERIMENT.build_model(config, combination)
        backbone = EXPERIMENT.model_to_save(config, combination, model).backbone
        kinds[combination.method] = (type(model).__name__, backbone.downsampling)
        kinds[combination.method] += (backbone.padding_mode,)
        if combination.method == "shift_aug":
            assert model.consistency_weight == 0.0 and model.shift_mode == "symmetric"
    assert kinds == {
        "baseline": ("Classifier", "stride", "zero"),
        "shift_aug": ("AugShift", "stride", "zero"),
        "augshift": ("AugShift", "stride", "zero"),
        "blurpool": ("Classifier", "blur", "zero"),
        "blurpool_augshift": ("AugShift", "blur", "zero"),
        "aps": ("Classifier", "aps", "circular"),
    }
    field = {f.name: f for f in dataclasses.fields(ShiftInvarianceConfig)}["blur_padding_mode"]
    assert field.metadata["choices"] is PADDING_MODES  # the library's vocabulary itself
    assert isinstance(EXPERIMENT.build_model(config, EXPERIMENT.combinations(config)[2]), AugShift)
    with pytest.raises(ValueError, match="Received: methods"):
        smoke(tmp_path, methods=("baseline", "nope"))
    with pytest.raises(ValueError, match="must not repeat a value. Received: seeds"):
        smoke(tmp_path, seeds=(1, 1))
    with pytest.raises(ValueError, match="Received: image_size=20"):
        smoke(tmp_path, image_size=20)


def test_a_missing_second_dataset_fails_before_anything_is_written(tmp_path):
    config = smoke(
        tmp_path / "run",
        dataset=("digits", "cifar100"),
        methods=("baseline",),
        data_dir=str(tmp_path / "tfds"),
    )
    with pytest.raises(FileNotFoundError, match="cifar100"):
        runner.prepare(EXPERIMENT, config)
    assert not (tmp_path / "run").exists()


def test_data_resizes_pixels_and_can_measure_on_the_holdout(tmp_path):
    from tfposenc.data import load_digits_arrays

    config = smoke(tmp_path, holdout_examples=40, test_on_holdout=True, test_examples=None)
    combination = EXPERIMENT.combinations(config)[0]
    data = EXPERIMENT.data(config, combination)
    images, labels = next(iter(data.train))
    assert images.shape == (16, 16, 16, 3) and labels.shape == (16,)
    assert 0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 255
    test_images = np.concatenate([x for x, _ in data.test])
    train_images, train_labels = load_digits_arrays("train")
    assert len(test_images) == 40
    np.testing.assert_array_equal(np.concatenate([y for _, y in data.test]), train_labels[:40])
    resized = tf.image.resize(train_images[:40].astype("float32"), (16, 16))
    np.testing.assert_array_equal(test_images, np.clip(np.round(resized), 0, 255))
    with pytest.raises(ValueError, match="`test_on_holdout` needs `holdout_examples`"):
        smoke(tmp_path, test_on_holdout=True)
