"""The validated push: infra validation in its own process, model validation against the
served version, an atomic push with lineage, retirement, and SIGKILL at any moment.

The models are not trained: a cell detector whose accuracy on grid canvases is 100% by
construction (the cell that differs most from the empty-cell colour holds the digit),
the same detector negated (0%), and tiny untrained GAPNets."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfposenc.data import info, load, make_grid
from tfposenc.export import export_saved_model
from tfposenc.models import GAPNet, ResNetBackbone
from trainers.delivery import cli, push, store, validate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CELL, K = 8, 2  # digits are 8 x 8: 2 x 2 canvases of 16 x 16 pixels
EVAL = dict(eval_data="digits", grid_size=K, task="location", eval_examples=5)
COMBINATION = "k2-zero-gapnet-location-seed0"  # a channel-wise run's per-seed name


def cell_detector(sign):
    """Logits per cell: +-(mean |pixel - empty-cell colour|), row-major like the labels."""
    fill = 255.0 * np.array(info("digits").mean, "float32")
    inputs = keras.Input((K * CELL, K * CELL, 3))
    x = keras.layers.Lambda(lambda t: keras.ops.abs(t - fill))(inputs)
    x = keras.layers.AveragePooling2D(CELL)(x)
    x = keras.layers.Lambda(lambda t: sign * keras.ops.sum(t, axis=-1))(x)
    return keras.Model(inputs, keras.layers.Flatten()(x))


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    base = tmp_path_factory.mktemp("exports")
    keras.utils.set_random_seed(0)
    paths = {}
    for name, model in [
        ("good", cell_detector(1.0)),
        ("bad", cell_detector(-1.0)),
        ("gapnet", GAPNet(ResNetBackbone(width=2, stem="cifar"), K * K)),
    ]:
        paths[name] = export_saved_model(model, str(base / name), image_shape=(K * CELL,) * 2)
    return paths


def oracle_accuracy(export, examples):
    """Accuracy of `export` on every-cell canvases, computed here (numpy argmax)."""
    source = load("digits", "test").take(examples)
    canvases = make_grid(
        source, K, "location", mean=info("digits").mean, placement="all_cells"
    ).batch(64)
    signature = tf.saved_model.load(export).signatures["serving_default"]
    correct = total = 0
    for images, labels in canvases:
        pixels = np.clip(np.round(images.numpy()), 0, 255).astype("uint8")
        logits = signature(images=tf.constant(pixels))["logits"].numpy()
        correct += int(np.sum(np.argmax(logits, -1) == labels.numpy()))
        total += len(labels)
    return 100.0 * correct / total, total


def served(base):
    return sorted(n for n in os.listdir(base) if not n.startswith("."))


def copy_version(export, base, version):
    shutil.copytree(export, os.path.join(base, str(version)))


def test_detectors_score_what_the_tests_assume(exports):
    assert oracle_accuracy(exports["good"], 5) == (100.0, 20)
    assert oracle_accuracy(exports["bad"], 5) == (0.0, 20)


def fake_run(tmp_path, export, test_examples=6):
    """A channel-wise run directory holding `export` as its one combination's export."""
    run = tmp_path / "run"
    config = {
        "experiment": "channelwise",
        "dataset": "digits",
        "grid_sizes": [K],
        "padding_modes": ["zero"],
        "networks": ["gapnet"],
        "tasks": ["location"],
        "test_examples": test_examples,
        "seed": 0,
        "out": str(run),
    }
    (run / "results").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config))
    result = {"combination": COMBINATION, "grid_size": K, "task": "location"}
    (run / "results" / f"{COMBINATION}.json").write_text(json.dumps(result))
    target = run / "exports" / COMBINATION / "1"
    shutil.copytree(export, target)
    return run, str(target), config


def test_pushing_twice_gives_versions_1_and_2_with_lineage(exports, tmp_path):
    run, export, config = fake_run(tmp_path, exports["gapnet"])
    base = str(tmp_path / "served")
    first = push.push(export, base, min_value=0, max_regression=0, log=None)
    assert first["pushed"] and first["version"] == 1 and served(base) == ["1"]
    second = push.push(export, base, min_value=0, max_regression=0, log=None)
    assert second["pushed"] and second["version"] == 2 and served(base) == ["1", "2"]
    # The run's own test canvases: 6 images, k^2 = 4 random placements each, redrawn on
    # every pass over the set: the same model as candidate and baseline scores the same
    # only because both see the same canvases.
    accuracy = second["candidate"]["accuracy"]
    assert second["candidate"] == {"accuracy": accuracy, "examples": 24}
    assert second["baseline"] == {"version": 1, "accuracy": accuracy, "examples": 24}
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    for version in (1, 2):
        with open(os.path.join(base, str(version), store.LINEAGE_FILE)) as f:
            lineage = json.load(f)
        assert lineage["version"] == version
        assert lineage["source"]["run"] == str(run)
        assert lineage["source"]["combination"] == COMBINATION
        assert lineage["source"]["export"] == export
        assert lineage["config_sha256"] == hashlib.sha256(canonical).hexdigest()
        assert lineage["evaluation"]["via"] == "trainers.channelwise evaluation_data hook"
        assert lineage["candidate"] == first["candidate"] == second["candidate"]
        assert [c["check"] for c in lineage["validation"]["checks"]] == (
            ["infra", "min-value"] + (["max-regression"] if version == 2 else [])
        )
        infra = lineage["validation"]["infra"]
        assert infra["ok"] and infra["warmup_records"] == 6  # two signatures, 3 requests each
        assert infra["loader"] == "serving.servable.Servable"
        assert (
            infra["load_seconds"] > 0 and infra["signatures"]["serving_default"]["latency_ms"] > 0
        )
        assert os.path.isfile(os.path.join(base, str(version), validate.WARMUP_FILE))
    assert lineage["baseline"]["version"] == 1
    # The pushed files are the export's, plus the lineage record.
    loaded = tf.saved_model.load(os.path.join(base, "2")).signatures["serving_default"]
    x = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3)).astype("uint8")
    reference = tf.saved_model.load(export).signatures["serving_default"]
    np.testing.assert_array_equal(
        loaded(images=tf.constant(x))["logits"].numpy(),
        reference(images=tf.constant(x))["logits"].numpy(),
    )


def test_unreachable_min_value_exits_1_and_creates_no_version(exports, tmp_path):
    base = tmp_path / "served"
    process = subprocess.run(
        [sys.executable, "-m", "trainers.push", "--export", exports["bad"]]
        + ["--serving-base", str(base), "--eval-data", "digits", "--grid-size", "2"]
        + ["--task", "location", "--eval-examples", "5", "--min-value", "50"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 1, process.stderr
    assert "FAIL min-value: accuracy 0.00 < min-value 50.00" in process.stdout
    assert "PASS infra" in process.stdout and "refused" in process.stdout
    assert os.listdir(base) == [store.LOCK_FILE]


def test_regression_beyond_max_regression_is_refused(exports, tmp_path, capsys):
    base = str(tmp_path / "served")
    copy_version(exports["good"], base, 1)
    before = sorted(os.listdir(os.path.join(base, "1")))
    args = ["--export", exports["bad"], "--serving-base", base, "--eval-data", "digits"]
    args += ["--grid-size", "2", "--task", "location", "--eval-examples", "5"]
    assert cli.main(args + ["--max-regression", "5"]) == 1
    printed = capsys.readouterr().out
    assert (
        "FAIL max-regression: accuracy 0.00 vs served version 1's 100.00: 100.00 below it "
        "(over max-regression 5.00)"
    ) in printed
    assert served(base) == ["1"] and sorted(os.listdir(os.path.join(base, "1"))) == before
    assert not [n for n in os.listdir(base) if n.startswith(store.STAGING_PREFIX)]


def test_keep_moves_old_versions_aside(exports, tmp_path):
    base = str(tmp_path / "served")
    for version in (1, 2):
        copy_version(exports["bad"], base, version)  # the same signatures as "good"
    result = push.push(exports["good"], base, keep=2, log=None, **EVAL)
    assert result["pushed"] and result["version"] == 3 and result["retired"] == [1]
    assert result["candidate"] == {"accuracy": 100.0, "examples": 20}
    assert served(base) == ["2", "3"]
    retired = os.path.join(base, store.RETIRED, "1")
    assert os.path.isfile(os.path.join(retired, "saved_model.pb"))  # moved, not deleted
    assert store.retire(base, 1) == [2] and served(base) == ["3"]
    assert sorted(os.listdir(os.path.join(base, store.RETIRED))) == ["1", "2"]


def test_a_savedmodel_that_does_not_load_is_refused_by_infra_validation(exports, tmp_path):
    candidate = tmp_path / "candidate" / "1"
    shutil.copytree(exports["gapnet"], candidate)
    (candidate / "saved_model.pb").write_bytes(b"\x08\x01 not a SavedModel")
    base = str(tmp_path / "served")
    copy_version(exports["gapnet"], base, 1)
    result = push.push(str(candidate), base, min_value=0, log=None, **EVAL)
    assert not result["pushed"] and served(base) == ["1"]
    (infra,) = result["checks"]  # no model validation after a failed infra check
    assert infra["check"] == "infra" and not infra["passed"]
    assert infra["message"].startswith("load and warm-up:")
    assert result["candidate"] is None


def test_non_finite_outputs_are_refused_by_infra_validation(tmp_path):
    inputs = keras.Input((16, 16, 3))
    outputs = keras.layers.Lambda(lambda t: keras.ops.log(t[:, 0, 0, :3] - 300.0))(inputs)
    export = export_saved_model(keras.Model(inputs, outputs), str(tmp_path / "nan"), 1, (16, 16))
    result = push.push(export, str(tmp_path / "served"), log=None, **EVAL)
    assert not result["pushed"]
    message = result["checks"][0]["message"]
    assert "output 'logits' is not finite" in message and "probabilities" in message


def test_bad_arguments(exports, tmp_path):
    base = str(tmp_path / "served")
    with pytest.raises(ValueError, match="Received: export_dir="):
        push.push(str(tmp_path), base, **EVAL)
    with pytest.raises(ValueError, match="Received: metric='loss'"):
        push.push(exports["good"], base, metric="loss", **EVAL)
    with pytest.raises(ValueError, match="Received: max_regression=-1"):
        push.push(exports["good"], base, max_regression=-1, **EVAL)
    with pytest.raises(ValueError, match="Received: keep=0"):
        push.push(exports["good"], base, keep=0, **EVAL)
    with pytest.raises(ValueError, match="Received: grid_size=None"):
        push.push(exports["good"], base, eval_data="digits", task="location")
    with pytest.raises(ValueError, match="No evaluation data"):
        push.push(exports["good"], base)
    assert not os.path.exists(base)


def start_push(export, base):
    command = [sys.executable, "-m", "trainers.push", "--export", export]
    command += ["--serving-base", base, "--eval-data", "digits", "--grid-size", "2"]
    command += ["--task", "location", "--eval-examples", "5"]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # the kill takes its infra validation process too
    )


def kill(process):
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def assert_intact(base, before):
    """Only complete versions: the ones before, and at most one new complete one."""
    names = served(base)
    new = [n for n in names if n not in before]
    assert sorted(set(names) - set(new)) == sorted(before) and len(new) <= 1
    for name in new:
        files = os.listdir(os.path.join(base, name))
        assert {"saved_model.pb", "variables", "assets.extra"} <= set(files)
        with open(os.path.join(base, name, store.LINEAGE_FILE)) as f:
            assert json.load(f)["version"] == int(name)
        tf.saved_model.load(os.path.join(base, name))  # loads
    return names


def test_sigkill_during_validation_leaves_no_version_and_the_next_push_works(exports, tmp_path):
    base = str(tmp_path / "served")
    copy_version(exports["bad"], base, 1)  # the same signatures as "good"
    process = start_push(exports["good"], base)
    for line in process.stdout:  # killed while its staged copy is being validated
        if line.startswith("infra validation"):
            time.sleep(1.0)
            break
    kill(process)
    assert served(base) == ["1"]
    assert [n for n in os.listdir(base) if n.startswith(store.STAGING_PREFIX)]
    result = push.push(exports["good"], base, log=None, **EVAL)
    assert result["pushed"] and result["version"] == 2
    assert served(base) == ["1", "2"]
    assert not [n for n in os.listdir(base) if n.startswith(store.STAGING_PREFIX)]


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_no_version_or_a_complete_one(exports, tmp_path):
    base = str(tmp_path / "served")
    start = time.perf_counter()
    process = start_push(exports["good"], base)
    process.communicate()
    total = time.perf_counter() - start
    assert process.returncode == 0 and served(base) == ["1"]
    outcomes = []
    for fraction in (0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05):
        before = served(base)
        process = start_push(exports["good"], base)
        time.sleep(total * fraction)
        kill(process)
        outcomes.append(len(assert_intact(base, before)) - len(before))
    assert 0 in outcomes  # some kills hit before the rename; later ones may not


def test_a_candidate_with_other_signatures_is_refused_with_every_difference(exports, tmp_path):
    base = str(tmp_path / "served")
    copy_version(exports["gapnet"], base, 1)  # 16x16 images -> 4 logits, and pooled_features
    result = push.push(exports["good"], base, min_value=0, log=None, **EVAL)
    assert not result["pushed"] and served(base) == ["1"]
    (check,) = [c for c in result["checks"] if c["check"] == "signatures"]
    assert not check["passed"]
    assert "signature 'pooled_features': served, missing in the candidate" in check["message"]
    assert "--allow-signature-change" in check["message"]
    assert result["candidate"] is None  # not evaluated on data that does not fit it
    allowed = push.push(
        exports["good"], base, min_value=0, max_regression=0, log=None,
        allow_signature_change=True, **EVAL,
    )  # fmt: skip
    assert allowed["pushed"] and allowed["version"] == 2 and allowed["baseline"] is None
    assert [c["passed"] for c in allowed["checks"] if c["check"] == "signatures"] == [True]


def test_an_input_size_change_is_named_in_words(tmp_path):
    from trainers.delivery.signatures import differences, signature_spec

    paths = {}
    for size in (16, 24):
        inputs = keras.Input((size, size, 3))
        model = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(inputs)))
        paths[size] = export_saved_model(model, str(tmp_path / str(size)), image_shape=(size,) * 2)
    lines = differences(signature_spec(paths[24]), signature_spec(paths[16]))
    assert any("(input 24x24, served 16x16)" in line for line in lines), lines
    assert differences(signature_spec(paths[16]), signature_spec(paths[16])) == []


def test_an_incomplete_version_directory_does_not_end_the_push(exports, tmp_path):
    base = tmp_path / "served"
    copy_version(exports["good"], str(base), 1)
    (base / "2").mkdir()  # a half-copied version: no saved_model.pb
    (base / "2" / "variables").mkdir()
    result = push.push(exports["good"], str(base), min_value=0, log=None, **EVAL)
    assert result["pushed"] and result["version"] == 3
    assert (base / "3" / "saved_model.pb").is_file() and (base / "2" / "variables").is_dir()


def test_push_command_errors_are_one_line_and_required_flags_are_marked(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--export", "/nonexistent"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--serving-base" in error[0], error
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "--allow-signature-change" in capsys.readouterr().out


def test_a_bad_flag_gets_one_line_and_no_tensorflow_log():
    """The flags parse before TensorFlow is imported (it printed 7 lines before)."""
    done = subprocess.run(
        [sys.executable, "-m", "trainers.push", "--no-such-flag"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "python -m trainers.push: error: unrecognized arguments: --no-such-flag (see --help)"
    ]
