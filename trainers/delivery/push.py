"""The validated push: TFX's InfraValidator, Evaluator and Pusher in one command.

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

import datetime
import json
import os
import shutil
import uuid

from tfposenc.export import next_version, write_warmup_requests
from tfposenc.vocabulary import TARGETS
from trainers.delivery.evaluate import METRICS, evaluate, grid_test_set, run_test_data
from trainers.delivery.evaluate import checks as threshold_checks
from trainers.delivery.signatures import differences, signature_spec
from trainers.delivery.store import (
    LINEAGE_FILE,
    MAX_EXPORT_BYTES,
    RETIRED,
    STAGING_PREFIX,
    Lock,
    config_hash,
    copy_export,
    export_problems,
    infer_run,
    retire,
    sha256,
    versions,
)
from trainers.delivery.validate import WARMUP_FILE, infra_check_entry, infra_validate


def signature_check(candidate, served_path, served_version, allowed):
    """The `signatures` check (None when the candidate serves the same contract)."""
    try:
        changes = differences(signature_spec(candidate), signature_spec(served_path))
    except Exception as error:  # noqa: BLE001 - a corrupt saved_model.pb (DecodeError) too
        changes = [f"the signatures cannot be read ({type(error).__name__}: {error})"]
    if not changes:
        return None
    how = (
        "allowed by --allow-signature-change; validated alone"
        if allowed
        else "refused: its clients would fail; --allow-signature-change pushes it anyway"
    )
    return {
        "check": "signatures",
        "passed": bool(allowed),
        "message": f"differs from served version {served_version} ({how}): " + "; ".join(changes),
    }


def lineage_remarks(served_path, served_version, combination):
    """Remarks (not refusals) on what the candidate replaces, from the served lineage."""
    path = os.path.join(served_path, LINEAGE_FILE)
    try:
        with open(path) as f:
            source = json.load(f).get("source", {})
    except (OSError, ValueError):
        return []
    served_combination = source.get("combination")
    if served_combination and served_combination != combination:
        return [
            f"served version {served_version} came from {served_combination!r}, the "
            f"candidate from {combination!r}: a different network or setting"
        ]
    return []


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
    if eval_data is not None and (grid_size is None or task not in TARGETS):
        raise ValueError(
            f"`eval_data` needs `grid_size` and `task` ({' or '.join(map(repr, TARGETS))}). "
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
    experiments=None,
    allow_signature_change=False,
    max_export_bytes=MAX_EXPORT_BYTES,
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
        experiments: dict or None. `{name: Experiment}` whose `data` hook rebuilds a
            run's test set (the push command passes every experiment of `trainers`).
        allow_signature_change: bool. Push a candidate whose signatures (names, inputs,
            outputs, dtypes, shapes) differ from the served version's; it is then
            validated alone (the served version's data would not fit it). Defaults to
            False: such a candidate is refused with every difference listed.
        max_export_bytes: int. The most a push copies; an export holding more, or a
            symbolic link, special or sparse file, a `fingerprint.pb` not its own or
            `assets.extra/` without its warm-up file, is refused before anything is
            copied (check `export`). Defaults to `store.MAX_EXPORT_BYTES` (2 GiB).

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
    run_dir = eval_run or (None if eval_data else infer_run(export_dir))
    if eval_data is not None:
        dataset = grid_test_set(eval_data, grid_size, task, cell_size, eval_examples)
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
        dataset, evaluation = run_test_data(run_dir, combination, experiments)
    else:
        raise ValueError(
            "No evaluation data: the export is not inside a run directory "
            "(<run>/exports/<combination>/<version>); pass `eval_run` or `eval_data`. "
            f"Received: export_dir={export_dir!r}"
        )
    os.makedirs(serving_base, exist_ok=True)
    result = {"pushed": False, "version": None, "path": None, "retired": [], "lineage": None}
    problems = export_problems(export_dir, max_export_bytes)
    if problems:  # nothing copied: a link to /dev/zero would fill the disk
        message = "; ".join(problems)
        say(f"   refused before copying: {message}")
        result.update(checks=[{"check": "export", "passed": False, "message": message}])
        result.update(infra=None, candidate=None, baseline=None, remarks=[])
        return result
    with Lock(serving_base):
        for name in os.listdir(serving_base):  # what a killed push left; we hold the lock
            if name.startswith(STAGING_PREFIX):
                shutil.rmtree(os.path.join(serving_base, name), ignore_errors=True)
        staging = os.path.join(serving_base, f"{STAGING_PREFIX}{uuid.uuid4().hex}")
        try:
            copy_export(export_dir, staging, max_export_bytes)
            added_warmup = not os.path.exists(os.path.join(staging, WARMUP_FILE))
            if added_warmup:
                write_warmup_requests(staging)
                say("   the export has no warm-up records: writing them into the copy")
            say(f"infra validation of {export_dir} (separate process)")
            infra = result["infra"] = infra_validate(staging, infra_timeout)
            checks = result["checks"] = [infra_check_entry(infra)]
            served = versions(serving_base)
            baseline = None
            result["remarks"] = remarks = []
            comparable = True
            if served and infra["ok"]:  # a candidate that does not load has no contract
                served_path = os.path.join(serving_base, str(served[-1]))
                check = signature_check(staging, served_path, served[-1], allow_signature_change)
                if check is not None:
                    checks.append(check)
                    comparable = False
                remarks += lineage_remarks(served_path, served[-1], combination)
                for remark in remarks:
                    say(f"   note: {remark}")
            if infra["ok"] and all(c["passed"] for c in checks):
                say(f"model validation on {evaluation.get('via', evaluation['source'])}")
                paths = {"candidate": staging}
                if served and comparable:
                    paths["baseline"] = served_path
                metrics = evaluate(paths, dataset)
                if "baseline" in metrics:
                    baseline = {"version": served[-1], **metrics["baseline"]}
                if "error" in metrics["candidate"]:
                    message = f"the candidate cannot be evaluated: {metrics['candidate']['error']}"
                    checks.append({"check": "evaluation", "passed": False, "message": message})
                else:
                    result["candidate"] = metrics["candidate"]
                    checks += threshold_checks(
                        metric, metrics["candidate"], baseline, min_value, max_regression
                    )
            result["baseline"] = baseline
            result.setdefault("candidate", None)
            if not all(c["passed"] for c in checks):
                return result
            version = next_version(serving_base)  # past any incomplete version directory
            lineage = {
                "version": version,
                "pushed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "source": {
                    "export": export_dir,
                    "run": run_dir and os.path.abspath(run_dir),
                    "combination": combination,
                    "saved_model_sha256": sha256(os.path.join(staging, "saved_model.pb")),
                    "warmup_added_by_push": added_warmup,
                },
                "config_sha256": config_hash(run_dir),
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


__all__ = ["push"]
