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
    summary = json.load(open(out / "results.json"))
    rows = summary["results"]
    assert [r["method"] for r in rows] == ["baseline", "augshift", "aps"]
    assert len({r["test_digest"] for r in results}) == 1  # every row: the same test images
    for row in rows:
        (r,) = row["seeds"]  # every row's per-seed records
        assert r["seed"] == 0 and r["dataset"] == "digits" and r["examples"] == 32
        for key in ("top1", "cons8", "cons16", "circular_consistency"):
            assert 0 <= r[key] <= 100 and row[key] == r[key]
            assert row[f"{key}_interval"][0] <= r[key] <= row[f"{key}_interval"][1]
        assert r["step_seconds"] > 0 and len(r["agreement_cons8"]) == 32
        assert sorted(map(int, r["curve"])) == list(range(1, 17))
        assert r["curve"]["8"] == r["cons8"] and r["curve"]["16"] == r["cons16"]
        assert r["curve"]["1"] == 100.0  # Cons.1: both views are the image itself
        assert 100 * np.mean(r["agreement_cons8"]) == pytest.approx(r["cons8"])
        assert artifacts.exported(r["export"])
        signatures = signature_defs(glob.glob(r["export"] + "/*")[0])
        assert {"serving_default", "pooled_features"} <= set(signatures)  # a Classifier
        model = keras.saving.load_model(out / "models" / f"{r['combination']}.keras")
        assert type(model) is Classifier
    # APS with circular padding is exactly invariant to circular shifts, trained or not;
    # on a black margin wider than the shift, Cons.8's black-fill shifts are circular
    # shifts, so it must score exactly 100 there too (a check of the whole pipeline).
    assert rows[2]["circular_consistency"] == 100.0
    assert rows[2]["cons8"] == 100.0
    # The comparisons whose rows ran (APS against the baseline), paired, with verdicts.
    claims = summary["claims"]
    assert [(c["first"], c["second"], c["m"]) for c in claims] == [
        ("aps", "baseline", 8),
        ("aps", "baseline", 16),
    ]
    for claim in claims:
        assert claim["verdict"] in ("shown", "not shown", "inconclusive")
        assert claim["low"] <= claim["difference"] <= claim["high"] and claim["seeds"] == [0]
    assert claims[0]["difference"] == pytest.approx(100.0 - rows[0]["cons8"])
    table = (out / "results.md").read_text()
    assert "| augshift |" in table and "| aps |" in table and "## Cost" in table
    assert "Cons.16" in table and "not shown" in table and "93.1" not in table
    assert "| aps - baseline | Cons.8 |" in table
    assert (out / "consistency_vs_shift_digits.png").stat().st_size > 1000


def _tags(folder):
    tags = set()
    for path in glob.glob(str(folder / "events.out.tfevents*")):
        acc = event_accumulator.EventAccumulator(path, size_guidance={"tensors": 0})
        acc.Reload()
        tags |= set(acc.Tags().get("scalars", [])) | set(acc.Tags().get("tensors", []))
    return tags


def test_tensorboard_one_run_per_combination_with_series_metrics_and_hparams(smoke_run):
    out, results, _ = smoke_run
    board = out / "tensorboard"
    names = [r["combination"] for r in results]
    assert sorted(p.name for p in board.iterdir() if p.is_dir()) == sorted([*names, "report"])
    assert not [p for p in board.iterdir() if not p.is_dir()]  # no run "."; config in report
    for name in names:
        assert not [p for p in (board / name).iterdir() if p.is_dir()]  # no sub-runs
        tags = _tags(board / name)
        assert {"consistency/cons_m", "test/top1", "test/cons8", "test/cons16",
                "test/circular_consistency", "_hparams_/session_start_info"} <= tags  # fmt: skip
        assert {"epoch/loss", "epoch/accuracy", "learning_rate"} <= tags
    augshift = _tags(board / "digits-augshift-seed0")
    assert {"train/latent_mse", "epoch/latent_mse", "epoch/cross_entropy",
            "epoch/latent_norm"} <= augshift  # fmt: skip
    assert "consistency_vs_shift_digits.png" in _tags(board / "report")
    acc = event_accumulator.EventAccumulator(str(board / names[0]), size_guidance={"tensors": 0})
    acc.Reload()
    curve = {
        e.step: float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors("consistency/cons_m")
    }
    assert curve == pytest.approx({int(m): v for m, v in results[0]["curve"].items()})


def test_cons_m_is_the_librarys_one_definition(smoke_run):
    from tfposenc.metrics import shift_consistency

    out, results, _ = smoke_run
    config = smoke(out)
    combination = EXPERIMENT.combinations(config)[0]
    model = keras.saving.load_model(out / "models" / f"{combination.name}.keras")
    data = EXPERIMENT.data(config, combination)
    for m, key in ((8, "cons8"), (16, "cons16")):  # the library's defaults: "centred" views
        measured = shift_consistency(model, data.test, max_shift=m, passes=config.passes)
        assert measured["consistency"] == results[0][key]


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
        examples=4,
        test_digest=dataset,
        curve=curve,
        agreement_cons8=[1.0, 1.0, 1.0, 0.68],
        agreement_cons16=[1.0, 1.0, 0.36, 1.0],
    )


def report(config, records, out):
    from trainers.shift_invariance.claims import aggregate

    rows = aggregate(records, config.passes)
    return "\n".join(EXPERIMENT.summarize(config, rows, str(out)).section)


def test_report_mean_std_and_poster_only_where_setup_matches(tmp_path):
    config = smoke(tmp_path, dataset=("cifar10", "digits"), width=64, image_size=32)
    results = [
        fake("cifar10", "baseline", 0, 90.0, 0.1),
        fake("cifar10", "baseline", 1, 92.0, 0.1),
        fake("cifar10", "augshift", 0, 91.0, 0.2),
        fake("cifar10", "augshift", 1, 91.0, 0.2),
        fake("digits", "baseline", 0, 99.0),
    ]
    text = report(config, results, tmp_path)
    std = np.std([90.0, 92.0], ddof=1)
    assert f"| baseline | 91.0 ± {std:.1f} [" in text and "| 92.0 ± 0.0 [" in text
    assert "| 1.00x | 93.1 / 90.8 | 91.6 / 87.4 |" in text  # poster, then the rerun
    assert "| 2.00x | 92.1 / 94.8 |" in text
    assert "## cifar10 (seeds 0, 1; mean +/- std [95% interval])" in text and "`poster`" in text
    digits = text.split("## digits")[1]
    assert "not shown" in digits and "| baseline | 99.0 [" in digits and "93.1" not in digits
    assert (tmp_path / "consistency_vs_shift_cifar10.png").stat().st_size > 1000
    # Width 16 on CIFAR-10 is not the poster's network: no poster column.
    narrow = report(smoke(tmp_path, dataset=("cifar10",)), results[:2], tmp_path)
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
            assert model.max_shift == config.crop_pad  # its views are the rows' crops
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

    config = smoke(tmp_path, holdout_examples=40, test_on_holdout=True, test_examples=None,
                   content_size=None)  # fmt: skip
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


def test_digits_sit_on_a_black_margin_and_every_row_gets_the_same_test_set(tmp_path):
    from tfposenc.data import load_digits_arrays

    config = smoke(tmp_path, methods=("baseline", "shift_aug", "augshift"), crop_pad=4,
                   test_examples=None)  # fmt: skip
    margin = (config.image_size - config.content_size) // 2
    assert margin == 4 and config.crop_pad > 0  # crops for every method by default
    digests = set()
    for combination in EXPERIMENT.combinations(config):
        data = EXPERIMENT.data(config, combination)
        images = np.concatenate([x for x, _ in data.test])
        assert len(images) == data.extra["test_examples"] == len(load_digits_arrays("test")[0])
        digests.add(data.extra["test_digest"])
        ring = np.ones(images.shape[1:3], bool)
        ring[margin:-margin, margin:-margin] = False
        assert images[:, ring].max() == 0  # the margin is black
        assert images[:, ~ring].max() > 0
        train, _ = next(iter(data.train))
        assert train.shape[1:3] == (16, 16)
    assert len(digests) == 1


def test_the_training_crops_and_flips_are_the_same_at_the_same_seed(tmp_path):
    """E15: the crops were drawn by a stateful op inside a parallel map, so their order
    (and the run's numbers) changed from run to run at the same seed."""
    config = smoke(tmp_path, flip=True)
    combination = EXPERIMENT.combinations(config)[0]
    batches = []
    for seed in (0, 0, 0, 1):
        keras.utils.set_random_seed(seed)
        train = EXPERIMENT.data(config, dataclasses.replace(combination, seed=seed)).train
        batches.append(np.concatenate([images.numpy() for images, _ in train.take(6)]))
    assert np.array_equal(batches[0], batches[1]) and np.array_equal(batches[0], batches[2])
    assert not np.array_equal(batches[0], batches[3])  # another seed, other crops


def test_a_run_gives_the_same_numbers_at_the_same_seed(tmp_path):
    values = []
    for name in ("a", "b"):
        config = smoke(tmp_path / name, methods=("baseline",), train_examples=32)
        (record,) = runner.run(EXPERIMENT, config)
        values.append({k: record[k] for k in ("top1", "cons8", "cons16", "curve")})
    assert values[0] == values[1]
