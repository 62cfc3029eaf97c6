import glob
import json
import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from tests.trainers.smoke import smoke_config
from tfposenc.data import load_digits_arrays
from trainers.attack import EXPERIMENT
from trainers.attack import data as attack_data
from trainers.attack.config import PRESETS, AttackConfig, Combination
from trainers.attack.report import report
from trainers.framework import cli, runner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def smoke(out, **overrides):
    return smoke_config(EXPERIMENT, out, **overrides)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """`(out, records, CPU seconds)` of one smoke run: the process's CPU time (every
    thread), which a machine shared with other work does not inflate as it does wall time."""
    out = tmp_path_factory.mktemp("attack-smoke")
    start = time.process_time()
    records = runner.run(EXPERIMENT, smoke(out))
    return out, records, time.process_time() - start


def test_smoke_writes_results_json_lists(smoke_run):
    out, results, cpu_seconds = smoke_run
    # CPU time, not wall time: the bound holds on a machine shared with other work.
    # "Well under a minute" of wall time on 2 cores is under ~90 CPU seconds.
    print(f"smoke: {cpu_seconds:.0f} CPU seconds")
    assert cpu_seconds < 90
    assert [r["combination"] for r in results] == [
        "zero-segmentation-seed0",
        "zero-location-seed0",
        "circular-segmentation-seed0",
        "circular-location-seed0",
    ]  # fmt: skip: the runner's per-seed records
    summary = json.load(open(out / "results.json"))
    sweep, fractions = summary["sweep"], PRESETS["smoke"]["fractions"]
    keys = {"padding", "task", "selection", "fraction", "region", "metric", "value", "std"}
    assert all(keys <= set(record) for record in sweep)
    regions = {
        "segmentation": {"overall", "left", "right", "centre", "border", "inner"},
        "location": {"overall", "border", "inner"},
    }
    for padding in ("zero", "circular"):
        for task, metric in (("segmentation", "miou"), ("location", "accuracy")):
            mine = [r for r in sweep if r["padding"] == padding and r["task"] == task]
            assert {r["region"] for r in mine} == regions[task]
            assert {r["metric"] for r in mine} == {metric}
            selections = {"ranked", "random", "random_matched", "magnitude"}
            assert {r["selection"] for r in mine} == selections
            assert len(mine) == 4 * len(fractions) * len(regions[task])
            assert {r["ranking"] for r in mine} == {"flip_2d"}  # sees rows and columns
            record = next(r for r in results if r["combination"] == f"{padding}-{task}-seed0")
            for region in regions[task]:  # the headline numbers are top-level floats (%)
                assert isinstance(record[f"{metric}_{region}"], float)
            assert -1 <= summary["flip_magnitude_spearman"][f"{padding}-{task}"] <= 1  # group
            for r in mine:
                assert 0 <= r["value"] <= 1 or np.isnan(r["value"])
                if not r["selection"].startswith("random"):
                    assert r["std"] == 0
                else:
                    assert r["std"] == pytest.approx(np.std(r["values"]))
                    draws = PRESETS["smoke"]["random_draws"] if r["fraction"] else 1
                    assert len(r["values"]) == r["draws"]  # one empty set at 0
                    if r["selection"] == "random":
                        assert r["draws"] == draws
                    else:  # fewer where fewer magnitude-matched sets exist
                        assert 1 <= r["draws"] <= draws
            # nothing removed: ranked and random are the same unablated model
            at_zero = [r for r in mine if r["fraction"] == 0 and r["region"] == "overall"]
            assert at_zero[0]["value"] == pytest.approx(at_zero[1]["value"])
    keys = {"padding", "stage", "border_contrast", "constant_input_std", "random_border_gap"}
    assert summary["artifacts"] and all(keys <= set(a) for a in summary["artifacts"])
    modes = {a["padding"] for a in summary["architecture_artifacts"]}
    assert modes == {"zero", "reflect", "replicate", "circular"}
    claims = summary["claims"]
    assert {c["claim"] for c in claims} >= {
        "ranked removal hurts more than random", "the damage is larger at the border than inside"
    }  # fmt: skip
    assert all(c["verdict"] in ("shown", "not shown", "inconclusive") for c in claims)
    # Two draws at the claim fraction: no test against random is judged.
    against = [c for c in claims if "random" in c["claim"]]
    assert against and {c["verdict"] for c in against} == {"inconclusive"}
    # The location models' ranked and magnitude records at the claim fraction carry their
    # per-canvas hits (images x cells) for the paired magnitude claim, matching `value`.
    paired = [r for r in sweep if "canvas_values" in r]
    assert {(r["task"], r["selection"], r["fraction"], r["region"]) for r in paired} == {
        ("location", s, 0.5, "overall") for s in ("ranked", "magnitude")
    }
    for r in paired:
        hits = np.asarray(r["canvas_values"])
        assert hits.shape == (PRESETS["smoke"]["location_test_examples"], 9)
        assert hits.mean() == pytest.approx(r["value"])


def test_circular_padding_has_no_border_artifacts_and_zero_padding_has(smoke_run):
    _, results, _ = smoke_run
    artifacts = [a for r in results for a in r["artifacts"]]
    stages = {a["stage"] for a in artifacts}
    assert {"stem", "stage1", "stage2", "stage3", "stage4"} <= stages
    circular = [a for a in artifacts if a["padding"] == "circular"]
    assert max(a["constant_input_std_max"] for a in circular) < 1e-5
    zero = [a for a in artifacts if a["padding"] == "zero"]
    assert max(a["constant_input_std"] for a in zero) > 1e-3
    # Noise inputs: the border shows for zero padding; for circular it is sampling error.
    for a in artifacts:
        if a["padding"] == "circular" and not np.isnan(a["random_border_gap"]):
            assert a["random_border_gap"] < 3 * a["random_border_gap_se"], a
        if a["padding"] == "zero" and a["stage"] in ("stage1", "stage2"):
            assert a["random_border_gap"] > 3 * a["random_border_gap_se"], a


def _tags(folder):
    """`{kind: tags}` of every event file directly in `folder` (one run)."""
    tags = {}
    for path in glob.glob(str(folder / "events.out.tfevents*")):
        accumulator = event_accumulator.EventAccumulator(path, size_guidance={"tensors": 0})
        accumulator.Reload()
        for kind, names in accumulator.Tags().items():
            if isinstance(names, list):
                tags.setdefault(kind, set()).update(names)
    return tags


def test_figures_markdown_and_tensorboard_runs(smoke_run):
    out, results, _ = smoke_run
    for name in (
        "sweep-zero-segmentation", "sweep-circular-location", "qualitative-zero",
        "qualitative-circular", "feature-maps-zero-segmentation-seed0-constant",
        "feature-maps-circular-location-seed0-sample",
    ):  # fmt: skip
        assert (out / f"{name}.png").stat().st_size > 1000, name
    table = open(out / "results.md").read()
    assert (
        "| zero | segmentation | border |" in table and "| zero | segmentation | centre |" in table
    )
    assert "| circular | location | inner |" in table and "periphery" not in table
    assert "## Claims" in table and "## Border artifacts of untrained backbones" in table
    board = out / "tensorboard"
    assert not [p for p in board.iterdir() if not p.is_dir()]  # no run "."; config in report
    assert sorted(p.name for p in board.iterdir() if p.is_dir()) == [
        "circular-location-seed0",
        "circular-segmentation-seed0",
        "report",
        "zero-location-seed0",
        "zero-segmentation-seed0",
    ]  # fmt: skip: one run per combination, no sub-runs, and the report
    for combination in ("zero-segmentation-seed0", "circular-location-seed0"):
        assert not [p for p in (board / combination).iterdir() if p.is_dir()]
        tags = _tags(board / combination)["tensors"]
        metric, region = (
            ("miou", "border") if "segmentation" in combination else ("accuracy", "inner")
        )
        assert {f"sweep/ranked/{region}", f"sweep/random/{region}",
                f"sweep/magnitude/{region}", f"sweep/random_sd/{region}"} <= tags  # fmt: skip
        assert {f"test/{metric}_overall", f"test/{metric}_{region}",
                "test/flip_magnitude_spearman", "_hparams_/session_start_info"} <= tags  # fmt: skip
        training = "epoch/pixel_accuracy" if "segmentation" in combination else "epoch/accuracy"
        assert training in tags
    assert {"qualitative-zero", "feature-maps-zero-segmentation-seed0-sample"} <= _tags(
        board / "zero-segmentation-seed0"
    )["tensors"]
    report_tags = _tags(board / "report")["tensors"]
    assert {"sweep-zero-segmentation.png", "qualitative-circular.png"} <= report_tags
    # The sweep's x axis is the percentage removed; the values are the records' (in %).
    accumulator = event_accumulator.EventAccumulator(
        str(board / "zero-location-seed0"), size_guidance={"tensors": 0}
    )
    accumulator.Reload()
    points = {
        e.step: float(tf.make_ndarray(e.tensor_proto))
        for e in accumulator.Tensors("sweep/ranked/overall")
    }
    sweep = [
        x for x in results[1]["sweep"] if x["selection"] == "ranked" and x["region"] == "overall"
    ]
    assert points == pytest.approx({round(100 * x["fraction"]): 100 * x["value"] for x in sweep})


def _confusion_miou(truth, predicted, classes):
    confusion = np.zeros((classes, classes))
    for t, p in zip(truth.ravel(), predicted.ravel()):
        confusion[t, p] += 1
    ious = [
        confusion[c, c] / (confusion[c].sum() + confusion[:, c].sum() - confusion[c, c])
        for c in range(classes)
        if confusion[c].sum() + confusion[:, c].sum() > 0
    ]
    return float(np.mean(ious))


def test_unablated_sweep_value_is_the_test_miou_of_the_saved_model(smoke_run):
    out, results, _ = smoke_run
    config = smoke(out)
    model = keras.saving.load_model(out / "models" / "zero-segmentation-seed0.keras")
    _, test, _, _ = attack_data.segmentation_data(config)
    truth, predicted = [], []
    for images, labels in test:
        truth.append(labels.numpy())
        predicted.append(np.asarray(model(images, training=False)).argmax(-1))
    truth, predicted = np.concatenate(truth), np.concatenate(predicted)
    assert len(truth) == config.test_examples
    expected = _confusion_miou(truth, predicted, 11)
    record = next(
        r for r in results[0]["sweep"]
        if r["fraction"] == 0 and r["region"] == "overall" and r["selection"] == "ranked"
    )  # fmt: skip
    assert record["value"] == pytest.approx(expected, abs=1e-6)


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


def _draws(mean, sd, seed, n=19):
    """`n` random-draw values with exactly this mean and population SD."""
    z = np.random.default_rng(seed).normal(size=n)
    return list(mean + sd * (z - z.mean()) / z.std())


def _canvases(value, seed, images=40, cells=9):
    """Per-canvas hits `(images, cells)` whose mean is `value` (to 1 / canvases)."""
    order = np.random.default_rng(seed).permutation(images * cells) + 0.5
    return (order / (images * cells) < value).astype(float).reshape(images, cells).tolist()


def _records(task, unablated, ranked, random, sd, border_extra=0.0, magnitude=None):
    """Synthetic sweep records at fractions 0 and 0.2 for regions overall, border, inner:
    `ranked` / `random` are the values at 0.2 (the border loses `border_extra` more); the
    random records carry 19 draws' `values` (mean `random`, SD `sd`; other draws in each
    region), the ranked and magnitude records at 0.2 their per-canvas hits."""
    rows = []
    regions = (("overall", 0.0), ("border", -border_extra), ("inner", 0.0))
    for seed, (region, shift) in enumerate(regions):
        for fraction, r_value, q_value in ((0.0, unablated, unablated), (0.2, ranked, random)):
            r_value = r_value + (shift if fraction else 0.0)
            m_value = unablated if not fraction else (q_value if magnitude is None else magnitude)
            values = _draws(q_value, sd, seed) if fraction else [q_value]
            common = dict(padding="zero", task=task, fraction=fraction, region=region, metric="m")
            ranked_row = dict(common, selection="ranked", value=r_value, std=0.0)
            magnitude_row = dict(common, selection="magnitude", value=m_value, std=0.0)
            if fraction and region == "overall":
                ranked_row["canvas_values"] = _canvases(r_value, 10)
                magnitude_row["canvas_values"] = _canvases(m_value, 11)
            rows.append(ranked_row)
            rows.append(dict(common, selection="random", value=q_value, std=sd * (fraction > 0),
                             values=values, draws=len(values)))  # fmt: skip
            rows.append(magnitude_row)
    return rows


def _result(name, sweep, chance=4.0):
    return dict(combination=name, padding_mode="zero", task="location", sweep=sweep,
                chance=chance, artifacts=[], flip_magnitude_spearman=0.5)  # fmt: skip


def _verdicts(config, results):
    from trainers.attack.claims import claims

    return {(c["combination"], c["claim"]): c["verdict"] for c in claims(config, results)}


def test_claims_shown_only_when_built_to_satisfy_and_beyond_the_random_sd(tmp_path):
    from trainers.attack.claims import BORDER_CLAIM, MAGNITUDE_CLAIM, RANDOM_CLAIM

    config = smoke(tmp_path, claim_fractions=(0.2,), skill_margin=0.1)
    results = [
        # Built to satisfy: a trained model, ranked far below random and magnitude, the
        # border losing 20 points more than the inner cells.
        _result(
            "built", _records("location", 0.9, 0.3, 0.8, 0.02, border_extra=0.2, magnitude=0.85)
        ),  # fmt: skip
        # Untrained-like: chance-level everything, and a big (meaningless) difference.
        _result("untrained", _records("location", 0.05, 0.0, 0.05, 0.0, border_extra=0.05)),
        # Within the random SD: the differences are smaller than the spread of the draws.
        _result(
            "within", _records("location", 0.9, 0.78, 0.8, 0.05, border_extra=0.02, magnitude=0.79)
        ),  # fmt: skip
        # Relatively worse at the border, but ranked removal spares both regions.
        _result("spares", _records("location", 0.9, 0.85, 0.6, 0.01, border_extra=0.1)),
        # The opposite: ranked removal hurts less than random, the inner cells more.
        _result(
            "opposite", _records("location", 0.9, 0.8, 0.5, 0.01, border_extra=-0.2, magnitude=0.4)
        ),  # fmt: skip
    ]
    verdicts = _verdicts(config, results)
    for claim in (RANDOM_CLAIM, MAGNITUDE_CLAIM, BORDER_CLAIM):
        assert verdicts["built", claim] == "shown"
        assert verdicts["untrained", claim] == "inconclusive"
        assert verdicts["within", claim] == "inconclusive"
        assert verdicts["opposite", claim] == "not shown"
    assert "shown" not in {v for (name, _), v in verdicts.items() if name == "untrained"}
    assert verdicts["spares", BORDER_CLAIM] == "inconclusive"


def test_report_table_claims_and_sweep_series(tmp_path):
    from trainers.attack.report import sweep_series

    config = smoke(tmp_path, fractions=(0.0, 0.2), table_fractions=(0.2,), claim_fractions=(0.2,))
    sweep = _records("location", 0.9, 0.3, 0.8, 0.02, border_extra=0.2, magnitude=0.85)
    text = "\n".join(report(config, [_result("built", sweep)], str(tmp_path)))
    assert "| zero | location | overall | 90.0 | 30.0 / 85.0 / 80.0 ± 2.0 (-50.0) |" in text
    assert "| built | 20% | ranked removal hurts more than random | shown |" in text
    assert (tmp_path / "sweep-built.png").stat().st_size > 1000
    series = sweep_series(sweep)
    assert series["sweep/ranked/border"] == [(0, 90.0), (20, pytest.approx(10.0))]
    assert series["sweep/random_sd/overall"] == [(0, 0.0), (20, pytest.approx(2.0))]
    assert series["sweep/magnitude/inner"] == [(0, 90.0), (20, 85.0)]


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
