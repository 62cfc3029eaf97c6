"""A validated push: TFX's InfraValidator, Evaluator and Pusher in one command.

    python -m trainers.push --export runs/channelwise/exports/k3-zero-gapnet-location/1 \\
        --serving-base serving_models/gapnet --min-value 90 --max-regression 1 --keep 3

    python -m trainers.push --export EXPORT_VERSION_DIR --serving-base PATH \\
        --eval-data digits --grid-size 3 --task location [--eval-examples 120]

A candidate (an exported SavedModel version directory) is copied into a hidden staging
directory inside `--serving-base`, and that copy, the very files that would be served,
goes through:

1. infra validation, in a separate Python process (`--infra-check`): the server's own
   loader (`serving.servable.Servable`) loads it, replays its warm-up records
   (`assets.extra/tf_serving_warmup_requests`; written into the copy when an older
   export has none) and a canary request per signature, checks that every output is
   finite and shaped as the signature says, and measures load, warm-up and canary times;
2. model validation: the candidate and the served version (the highest integer version
   under `--serving-base`, if any) are evaluated through their `serving_default`
   signature on the same data, by default the test canvases of the run that exported the
   candidate (`<run>/exports/<combination>/<version>`: the experiment's own `data` hook,
   rebuilt from `<run>/config.json`), or a dataset named by flags (every image in every
   cell: a deterministic set). The candidate is blessed only if its metric is at least
   `--min-value` and at most `--max-regression` below the served version's;
3. push: the blessed copy gets a lineage record (`assets.extra/tfposenc_lineage.json`:
   source run and combination, config hash, metrics of candidate and baseline,
   validation results, time) and is renamed to the next integer version: a push killed
   at any moment leaves either no new version or a complete one (a hidden staging
   directory left by a kill is removed by the next push). `--keep N` then moves versions
   beyond the newest N into `<serving-base>/.retired/` (never deletes).

A refused candidate leaves the serving base as it was and the command exits with 1,
printing every check with its numbers. TF Serving and `serving.server` ignore the
non-integer names used here (`.push-*`, `.push.lock`, `.retired`).
"""

import argparse
import dataclasses
import datetime
import fcntl
import hashlib
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

VERSION_NAME = re.compile(r"[0-9]{1,18}", re.ASCII)  # as TF Serving and serving.server
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
LINEAGE_FILE = os.path.join("assets.extra", "tfposenc_lineage.json")
STAGING_PREFIX = ".push-"
LOCK_FILE = ".push.lock"
RETIRED = ".retired"
METRICS = ("accuracy",)  # top-1 accuracy in %, higher is better
CANARY_BATCH = 2
CANARY_REPEATS = 5
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def versions(serving_base):
    """The complete integer versions (holding `saved_model.pb`) under `serving_base`."""
    if not os.path.isdir(serving_base):
        return []
    return sorted(
        int(name)
        for name in os.listdir(serving_base)
        if VERSION_NAME.fullmatch(name)
        and os.path.isfile(os.path.join(serving_base, name, "saved_model.pb"))
    )


# === Infra validation (runs in its own process) ===


def infra_check(path):
    """Loads the SavedModel at `path` as the server does and sends it requests.

    Returns a dict: `ok`, `failures` (list of str), `loader`, `load_seconds`,
    `warmup_records`, `warmup_seconds` and per signature the canary's `latency_ms`
    (median of `CANARY_REPEATS` calls of batch `CANARY_BATCH`).
    """
    import numpy as np

    from tfposenc.export import example_input, signature_defs

    report = {"path": path, "failures": []}
    failures = report["failures"]
    try:
        start = time.perf_counter()
        servable = _Loaded(path)
        report["loader"] = servable.loader
        report["load_seconds"] = round(time.perf_counter() - start, 3)
        start = time.perf_counter()
        report["warmup_records"] = servable.warm_up()
        report["warmup_seconds"] = round(time.perf_counter() - start, 3)
        definitions = signature_defs(path)
    except Exception as error:  # noqa: BLE001 - any load failure refuses the candidate
        failures.append(f"load and warm-up: {type(error).__name__}: {error}")
        report["ok"] = False
        return report
    if not report["warmup_records"]:
        failures.append(f"warm-up: no records in {WARMUP_FILE}")
    report["signatures"] = {}
    for name in sorted(servable.signatures):
        definition = definitions[name]
        inputs = {
            key: example_input(info, CANARY_BATCH, "random", seed=17)
            for key, info in definition.inputs.items()
        }
        latencies = []
        try:
            for _ in range(CANARY_REPEATS):
                start = time.perf_counter()
                outputs = servable.predict(name, inputs)
                latencies.append(time.perf_counter() - start)
        except Exception as error:  # noqa: BLE001
            failures.append(f"canary {name}: {type(error).__name__}: {error}")
            continue
        report["signatures"][name] = {"latency_ms": round(1000 * float(np.median(latencies)), 3)}
        failures += _output_failures(name, definition, outputs)
    report["ok"] = not failures
    return report


def _output_failures(name, definition, outputs):
    import numpy as np
    import tensorflow as tf

    failures = []
    if set(outputs) != set(definition.outputs):
        failures.append(
            f"canary {name}: outputs {sorted(outputs)} != signature's {sorted(definition.outputs)}"
        )
    for key, value in sorted(outputs.items()):
        if key not in definition.outputs:
            continue
        value = np.asarray(value)
        shape = tf.TensorShape(
            None
            if definition.outputs[key].tensor_shape.unknown_rank
            else [d.size if d.size >= 0 else None for d in definition.outputs[key].tensor_shape.dim]
        )
        if not shape.is_compatible_with(value.shape) or value.shape[:1] != (CANARY_BATCH,):
            failures.append(
                f"canary {name}: output {key!r} has shape {list(value.shape)}, signature says "
                f"{shape} for a batch of {CANARY_BATCH}"
            )
        if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
            failures.append(f"canary {name}: output {key!r} is not finite")
    return failures


class _Loaded:
    """What infra validation needs of a loaded version: `signatures`, `warm_up()`,
    `predict(signature, numpy inputs)`."""

    def __init__(self, path):
        self.path = path
        try:  # the server's own loader
            from serving.servable import Servable
        except ImportError:
            Servable = None
        if Servable is not None:
            self.servable = Servable(0, path, warmup=False)
            self.signatures = self.servable.signatures
            self.loader = "serving.servable.Servable"
        else:
            import tensorflow as tf

            self.servable = None
            self.module = tf.saved_model.load(path, tags=["serve"])
            self.signatures = dict(self.module.signatures)
            self.loader = "tf.saved_model.load"

    def warm_up(self):
        if self.servable is not None:
            return self.servable.warm_up()
        import tensorflow as tf
        from tensorflow_serving.apis import prediction_log_pb2

        file, count = os.path.join(self.path, WARMUP_FILE), 0
        if os.path.exists(file):
            for record in tf.data.TFRecordDataset(file):
                request = prediction_log_pb2.PredictionLog.FromString(
                    record.numpy()
                ).predict_log.request
                inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
                self.predict(request.model_spec.signature_name or "serving_default", inputs)
                count += 1
        return count

    def predict(self, name, inputs):
        if self.servable is not None:
            return self.servable.run(name, inputs, batched=False)[1]
        import tensorflow as tf

        outputs = self.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}


def infra_validate(path, timeout=600):
    """Runs `infra_check(path)` in a fresh Python process; returns its report (with
    `ok` False and the process's last words when it died without one)."""
    with tempfile.TemporaryDirectory() as scratch:
        report_path = os.path.join(scratch, "report.json")
        command = [sys.executable, "-m", "trainers.push", "--infra-check", path]
        command += ["--infra-report", report_path]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
        start = time.perf_counter()
        try:
            process = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
            )
        except subprocess.TimeoutExpired:
            return {"ok": False, "failures": [f"infra validation took over {timeout} s"]}
        if os.path.exists(report_path):
            with open(report_path) as f:
                report = json.load(f)
        else:
            last = (process.stderr or process.stdout).strip().splitlines()[-5:]
            report = {
                "ok": False,
                "failures": [
                    f"validation process exited {process.returncode}: " + " | ".join(last)
                ],
            }
        report["process_seconds"] = round(time.perf_counter() - start, 3)
        return report


# === Model validation ===


def evaluate(paths, dataset):
    """Top-1 `accuracy` (%) and `examples` of each SavedModel in `paths` (`{key: path}`)
    on `dataset` (`(float pixels 0..255, int labels)` batches, sent as rounded uint8
    pixels), all in one pass: test sets drawn with fresh random placements on every
    iteration give every model the same canvases. Returns `{key: metrics}`, with
    `{"error": message}` for a model that cannot be loaded or run."""
    import numpy as np
    import tensorflow as tf

    signatures, results, counts = {}, {}, {}
    for key, path in paths.items():
        try:
            signatures[key] = tf.saved_model.load(path).signatures["serving_default"]
            counts[key] = [0, 0]
        except Exception as error:  # noqa: BLE001 - reported, the caller decides
            results[key] = {"error": f"{type(error).__name__}: {error}"}
    for images, labels in dataset:
        pixels = tf.cast(tf.clip_by_value(tf.round(images), 0, 255), tf.uint8)
        for key in list(signatures):
            try:
                outputs = signatures[key](images=pixels)
            except Exception as error:  # noqa: BLE001
                results[key] = {"error": f"{type(error).__name__}: {error}"}
                del signatures[key]
                continue
            if "classes" in outputs:
                classes = outputs["classes"].numpy()
            else:
                classes = np.argmax(outputs.get("logits", outputs.get("probabilities")), -1)
            counts[key][0] += int(np.sum(classes == labels.numpy()))
            counts[key][1] += int(labels.shape[0])
    for key in signatures:
        correct, total = counts[key]
        results[key] = {"accuracy": 100.0 * correct / max(total, 1), "examples": total}
    return results


def run_test_data(run_dir, combination):
    """The test set the run at `run_dir` evaluated `combination` (a name) on, and a
    description of it: the experiment's own `data` hook, rebuilt from `config.json`;
    for a run whose experiment cannot be rebuilt, grid canvases as `config.json` and
    `results/<combination>.json` describe them."""
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    description = {"source": "run", "run": os.path.abspath(run_dir), "combination": combination}
    try:
        module = importlib.import_module(f"trainers.{config['experiment']}")
        experiment = module.EXPERIMENT
        known = {f.name for f in dataclasses.fields(experiment.config_class)}
        resolved = experiment.config_class(**{k: v for k, v in config.items() if k in known})
        chosen = [c for c in experiment.combinations(resolved) if c.name == combination]
        if chosen:
            import keras

            keras.utils.set_random_seed(resolved.seed)  # as the runner does before `data`
            description["via"] = f"trainers.{config['experiment']} data hook"
            return experiment.data(resolved, chosen[0]).test, description
    except (ImportError, KeyError, AttributeError, TypeError, ValueError):
        pass
    grid_size, task = _combination_fields(run_dir, combination)
    description["via"] = "config.json grid canvases"
    return _grid_test_set(
        config["dataset"],
        grid_size,
        task,
        cell_size=config.get("cell_size"),
        examples=config.get("test_examples"),
        seed=config.get("seed", 0) + 2,
        placement=config.get("eval_placement", "random"),
        data_dir=config.get("data_dir"),
    ), description


def _combination_fields(run_dir, combination):
    path = os.path.join(run_dir, "results", f"{combination}.json")
    if os.path.exists(path):
        with open(path) as f:
            result = json.load(f)
        return int(result["grid_size"]), result["task"]
    match = re.fullmatch(r"k(\d+)-.*-(location|class)", combination)
    if match is None:
        raise ValueError(
            f"Cannot tell the grid size and task of combination {combination!r}: no "
            f"{path} and the name is not k<size>-...-<task>."
        )
    return int(match.group(1)), match.group(2)


def _grid_test_set(
    dataset, grid_size, task, cell_size=None, examples=None, seed=0, placement="all_cells",
    data_dir=None, batch_size=64,
):  # fmt: skip
    from tfposenc.data import info, load, make_grid

    source = load(dataset, "test", data_dir)
    if examples:
        source = source.take(examples)
    grid = dict(grid_size=grid_size, target=task, cell_size=cell_size, mean=info(dataset).mean)
    if placement == "all_cells":
        canvases = make_grid(source, placement="all_cells", **grid)
    else:
        canvases = make_grid(source, seed=seed, passes=grid_size * grid_size, **grid)
    return canvases.batch(batch_size)


def _checks(metric, candidate, baseline, min_value, max_regression):
    checks = []
    value = candidate[metric]
    if min_value is not None:
        passed = value >= min_value
        sign = ">=" if passed else "<"
        checks.append(
            {
                "check": "min-value",
                "passed": passed,
                "message": f"{metric} {value:.2f} {sign} min-value {min_value:.2f}",
            }
        )
    if max_regression is not None and baseline is not None:
        if "error" in baseline:
            checks.append(
                {
                    "check": "max-regression",
                    "passed": False,
                    "message": f"served version {baseline['version']} could not be evaluated: "
                    f"{baseline['error']}",
                }
            )
        else:
            drop = baseline[metric] - value
            passed = drop <= max_regression
            checks.append(
                {
                    "check": "max-regression",
                    "passed": passed,
                    "message": f"{metric} {value:.2f} vs served version {baseline['version']}'s "
                    f"{baseline[metric]:.2f}: {max(drop, 0):.2f} below it "
                    f"({'within' if passed else 'over'} max-regression {max_regression:.2f})",
                }
            )
    return checks


def _infra_check_entry(report):
    if report["ok"]:
        signatures = report.get("signatures", {})
        canary = ", ".join(f"{k} {v['latency_ms']:.1f} ms" for k, v in signatures.items())
        message = (
            f"loaded in {report['load_seconds']:.2f} s with {report['loader']}, "
            f"{report['warmup_records']} warm-up requests in {report['warmup_seconds']:.2f} s, "
            f"canary batch {CANARY_BATCH} median: {canary}"
        )
    else:
        message = "; ".join(report["failures"])
    return {"check": "infra", "passed": report["ok"], "message": message}


# === Push ===


class _Lock:
    """An exclusive `flock` on `<serving_base>/.push.lock`; the kernel drops it when the
    holder dies, so a killed push never blocks the next one."""

    def __init__(self, serving_base):
        self.path = os.path.join(serving_base, LOCK_FILE)

    def __enter__(self):
        self.file = open(self.path, "a")
        fcntl.flock(self.file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _config_hash(run_dir):
    path = run_dir and os.path.join(run_dir, "config.json")
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        canonical = json.dumps(json.load(f), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def retire(serving_base, keep):
    """Moves every version beyond the newest `keep` into `<serving_base>/.retired/`;
    returns the moved versions."""
    old = versions(serving_base)[:-keep]
    if old:
        os.makedirs(os.path.join(serving_base, RETIRED), exist_ok=True)
    for version in old:
        target = os.path.join(serving_base, RETIRED, str(version))
        if os.path.exists(target):
            target += f"-{uuid.uuid4().hex[:8]}"
        os.rename(os.path.join(serving_base, str(version)), target)
    return old


def _infer_run(export_dir):
    """`<run>` of an export at `<run>/exports/<combination>/<version>`, else None."""
    combination_dir = os.path.dirname(os.path.abspath(export_dir))
    exports = os.path.dirname(combination_dir)
    run = os.path.dirname(exports)
    if os.path.basename(exports) == "exports" and os.path.isfile(os.path.join(run, "config.json")):
        return run
    return None


def _check_args(export_dir, metric, min_value, max_regression, keep, eval_data, grid_size, task):
    if not os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
        raise ValueError(
            f"`export_dir` must be an exported version directory holding saved_model.pb. "
            f"Received: export_dir={export_dir!r}"
        )
    if metric not in METRICS:
        raise ValueError(f"`metric` must be one of {METRICS}. Received: metric={metric!r}")
    if max_regression is not None and not max_regression >= 0:
        raise ValueError(
            f"`max_regression` must be >= 0. Received: max_regression={max_regression!r}"
        )
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise ValueError(f"`keep` must be an int >= 1. Received: keep={keep!r}")
    if eval_data is not None and (grid_size is None or task not in ("location", "class")):
        raise ValueError(
            "`eval_data` needs `grid_size` and `task` ('location' or 'class'). "
            f"Received: grid_size={grid_size!r}, task={task!r}"
        )


def push(
    export_dir,
    serving_base,
    *,
    eval_run=None,
    eval_data=None,
    grid_size=None,
    task=None,
    cell_size=None,
    eval_examples=None,
    metric="accuracy",
    min_value=None,
    max_regression=None,
    keep=None,
    infra_timeout=600,
    log=print,
):
    """Validates the exported version `export_dir` and pushes it into `serving_base`.

    Args:
        export_dir: str. An exported SavedModel version directory.
        serving_base: str. The served model's base path (created if missing).
        eval_run: str or None. The run whose test set evaluates candidate and baseline;
            None: the run the export sits in (`<run>/exports/<combination>/<version>`),
            unless `eval_data` is given.
        eval_data: str or None. A dataset name (`tfposenc.data.DATASETS`): evaluate on
            its test split as `grid_size` x `grid_size` canvases for `task`, every image
            in every cell. Defaults to None.
        grid_size, task, cell_size, eval_examples: the canvases of `eval_data` (task
            `"location"` or `"class"`; `eval_examples` test images, None: all).
        metric: str. The metric the thresholds apply to. Defaults to `"accuracy"` (%).
        min_value: float or None. The least metric a candidate needs. Defaults to None.
        max_regression: float >= 0 or None. How far below the served version's metric a
            candidate may be. Defaults to None (no comparison).
        keep: int >= 1 or None. After a push, versions beyond the newest `keep` move to
            `<serving_base>/.retired/`. Defaults to None (keep all).
        infra_timeout: float. Seconds the infra validation process may take.
        log: callable or None. Receives progress lines. Defaults to `print`.

    Returns:
        A dict: `pushed` (bool), `version` and `path` (None when refused), `checks`
        (each `{"check", "passed", "message"}`), `candidate` and `baseline` metrics,
        `infra` (the infra validation report), `retired` (versions moved aside) and
        `lineage` (the record written with the version).

    Raises:
        ValueError: bad arguments, or no evaluation data (neither a run nor `eval_data`).
    """
    _check_args(export_dir, metric, min_value, max_regression, keep, eval_data, grid_size, task)
    say = log or (lambda line: None)
    export_dir = os.path.abspath(export_dir)
    combination = os.path.basename(os.path.dirname(export_dir))
    run_dir = eval_run or (None if eval_data else _infer_run(export_dir))
    if eval_data is not None:
        dataset = _grid_test_set(eval_data, grid_size, task, cell_size, eval_examples)
        evaluation = {
            "source": "flags",
            "dataset": eval_data,
            "grid_size": grid_size,
            "task": task,
            "cell_size": cell_size,
            "examples": eval_examples,
            "placement": "all_cells",
        }
    elif run_dir is not None:
        dataset, evaluation = run_test_data(run_dir, combination)
    else:
        raise ValueError(
            "No evaluation data: the export is not inside a run directory "
            "(<run>/exports/<combination>/<version>); pass `eval_run` or `eval_data`. "
            f"Received: export_dir={export_dir!r}"
        )
    os.makedirs(serving_base, exist_ok=True)
    result = {"pushed": False, "version": None, "path": None, "retired": [], "lineage": None}
    with _Lock(serving_base):
        for name in os.listdir(serving_base):  # what a killed push left; we hold the lock
            if name.startswith(STAGING_PREFIX):
                shutil.rmtree(os.path.join(serving_base, name), ignore_errors=True)
        staging = os.path.join(serving_base, f"{STAGING_PREFIX}{uuid.uuid4().hex}")
        try:
            shutil.copytree(export_dir, staging)
            added_warmup = not os.path.exists(os.path.join(staging, WARMUP_FILE))
            if added_warmup:
                from tfposenc.export import write_warmup_requests

                write_warmup_requests(staging)
                say("   the export has no warm-up records: writing them into the copy")
            say(f"infra validation of {export_dir} (separate process)")
            infra = result["infra"] = infra_validate(staging, infra_timeout)
            checks = result["checks"] = [_infra_check_entry(infra)]
            served = versions(serving_base)
            baseline = None
            if infra["ok"]:
                say(f"model validation on {evaluation.get('via', evaluation['source'])}")
                paths = {"candidate": staging}
                if served:
                    paths["baseline"] = os.path.join(serving_base, str(served[-1]))
                metrics = evaluate(paths, dataset)
                if served:
                    baseline = {"version": served[-1], **metrics["baseline"]}
                if "error" in metrics["candidate"]:
                    message = f"the candidate cannot be evaluated: {metrics['candidate']['error']}"
                    checks.append({"check": "evaluation", "passed": False, "message": message})
                else:
                    result["candidate"] = metrics["candidate"]
                    checks += _checks(
                        metric, metrics["candidate"], baseline, min_value, max_regression
                    )
            result["baseline"] = baseline
            result.setdefault("candidate", None)
            if not all(c["passed"] for c in checks):
                return result
            version = (served[-1] + 1) if served else 1
            lineage = {
                "version": version,
                "pushed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "source": {
                    "export": export_dir,
                    "run": run_dir and os.path.abspath(run_dir),
                    "combination": combination,
                    "saved_model_sha256": _sha256(os.path.join(staging, "saved_model.pb")),
                    "warmup_added_by_push": added_warmup,
                },
                "config_sha256": _config_hash(run_dir),
                "metric": metric,
                "candidate": result["candidate"],
                "baseline": baseline,
                "evaluation": evaluation,
                "thresholds": {"min_value": min_value, "max_regression": max_regression},
                "validation": {"infra": infra, "checks": checks},
            }
            with open(os.path.join(staging, LINEAGE_FILE), "w") as f:
                json.dump(lineage, f, indent=2)
            target = os.path.join(serving_base, str(version))
            os.rename(staging, target)  # atomic: the version appears complete or not at all
            result.update(pushed=True, version=version, path=target, lineage=lineage)
            say(f"pushed {target}")
            if keep is not None:
                result["retired"] = retire(serving_base, keep)
                for old in result["retired"]:
                    say(f"   retired version {old} to {os.path.join(serving_base, RETIRED)}")
            return result
        finally:
            shutil.rmtree(staging, ignore_errors=True)


# === Command line ===


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m trainers.push",
        description="Validates an exported SavedModel (infra and model) and pushes it "
        "as the next version under --serving-base.",
    )
    add = parser.add_argument
    add("--export", help="exported version directory (holds saved_model.pb)")
    add("--serving-base", help="base path of the served model")
    add("--eval-run", help="run directory whose test set evaluates (default: the export's run)")
    add("--eval-data", help="evaluate on this dataset's test split instead (e.g. digits)")
    add("--grid-size", type=int, help="grid size k of --eval-data canvases")
    add("--task", choices=("location", "class"), help="target of --eval-data canvases")
    add("--cell-size", type=int, help="cell size of --eval-data canvases (default: theirs)")
    add("--eval-examples", type=int, help="test images of --eval-data (default: all)")
    add("--metric", default="accuracy", choices=METRICS, help="metric the thresholds apply to")
    add("--min-value", type=float, help="least metric value to push")
    add("--max-regression", type=float, help="most the metric may fall below the served one")
    add("--keep", type=int, help="after a push, retire versions beyond the newest N")
    add("--infra-check", help=argparse.SUPPRESS)  # the infra validation process
    add("--infra-report", help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    """`python -m trainers.push` and the `tfposenc-push` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.infra_check:
        report = infra_check(args.infra_check)
        with open(args.infra_report, "w") as f:
            json.dump(report, f)
        return 0 if report["ok"] else 1
    if not args.export or not args.serving_base:
        parser.error("--export and --serving-base are required")
    try:
        result = push(
            args.export,
            args.serving_base,
            eval_run=args.eval_run,
            eval_data=args.eval_data,
            grid_size=args.grid_size,
            task=args.task,
            cell_size=args.cell_size,
            eval_examples=args.eval_examples,
            metric=args.metric,
            min_value=args.min_value,
            max_regression=args.max_regression,
            keep=args.keep,
        )
    except ValueError as error:
        parser.error(str(error))
    for check in result["checks"]:
        print(f"{'PASS' if check['passed'] else 'FAIL'} {check['check']}: {check['message']}")
    if not result["pushed"]:
        print(f"refused: nothing pushed, {args.serving_base} unchanged", flush=True)
        return 1
    print(f"pushed version {result['version']}: {result['path']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
