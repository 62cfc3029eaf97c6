"""The generic runner: the resumable loop over an experiment's combinations.

`prepare(experiment, config)` checks everything before anything is written: the config,
that `config.out` is writable and new or holds this same config, the data of the first
combination, and every combination's model (built for its input size and run once on
zeros: the preflight). `execute(plan)` then writes `config.json` and, for combination
i of N (printing elapsed time and an estimate of the time left):

    seed -> data -> build -> compile -> resumable fit -> evaluate -> save .keras
    -> export SavedModel -> results/<name>.json (atomic) -> drop the backup

and finally `results.json`, `results.md` (the experiment's section, then the cost of each
combination) and the experiment's figures. Killed at any point and started again with
the same config and `--out`, finished combinations are skipped and the running one
resumes after its last finished epoch; a broken backup is set aside and that combination
retrained (saying so); a NaN loss stops the run with `core.NonFiniteLossError` and
reports nothing.

Extension points are the `trainers.experiment.Experiment` hooks; the run directory is:

    config.json  metrics.jsonl  results.json  results.md  results/<name>.json
    tensorboard/<name>/  checkpoints/<name>/ (until done)  models/<name>.keras
    exports/<name>/<version>/  (and whatever the experiment's `report` draws)
"""

import dataclasses
import json
import os
import re
import shutil
import time

import keras

from trainers import config as config_lib
from trainers import core, reports


@dataclasses.dataclass
class Plan:
    """A checked run: what `execute` needs."""

    experiment: object
    config: object
    combinations: list
    strategy: object
    precision: str


def prepare(experiment, config):
    """Checks the run without writing anything; returns a `Plan`.

    Raises:
        ValueError: an unusable `out`, a different config in it, or a combination whose
            model cannot be built or run (the message names the combination).
        tfposenc.data.DatasetNotFoundError: the dataset is not prepared.
    """
    combinations = list(experiment.combinations(config))
    names = [c.name for c in combinations]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"Combination names must be unique and non-empty. Received: {names}")
    core.check_writable(config.out)
    config_lib.check_resume(config, experiment.name)
    precision = core.set_precision(config.precision)
    experiment.data(config, combinations[0])
    for combination in combinations:
        try:
            model = experiment.build_model(config, combination)
            experiment.check_model(config, combination, model)
        except ValueError as error:
            raise ValueError(f"{combination.name}: {error}") from error
        del model
    keras.backend.clear_session()
    strategy = core.make_strategy(config.strategy, config.devices)
    return Plan(experiment, config, combinations, strategy, precision)


def _duration(seconds):
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def execute(plan):
    """Runs (or resumes) a prepared plan; returns the list of result dicts."""
    experiment, config = plan.experiment, plan.config
    config_lib.write_config(config, experiment.name)
    total = len(plan.combinations)
    print(
        f"{experiment.name}: {total} combinations, {plan.strategy.num_replicas_in_sync} "
        f"replica(s), {plan.precision}, run directory {config.out}",
        flush=True,
    )
    start, trained, results = time.time(), 0, []
    todo = sum(not os.path.exists(_result_path(config, c)) for c in plan.combinations)
    for index, combination in enumerate(plan.combinations, 1):
        done_before = os.path.exists(_result_path(config, combination))
        elapsed = time.time() - start
        left = f", about {_duration(elapsed / trained * (todo - trained))} left" if trained else ""
        status = "finished earlier" if done_before else f"elapsed {_duration(elapsed)}{left}"
        print(f"combination {index} of {total}: {combination.name} ({status})", flush=True)
        results.append(run_combination(plan, combination))
        trained += not done_before
    section = experiment.report(config, results, config.out)
    reports.write_results(config.out, experiment.name, config, results, section)
    return results


def run(experiment, config):
    """`prepare`, then `execute`: runs or resumes the whole experiment."""
    return execute(prepare(experiment, config))


def _result_path(config, combination):
    return os.path.join(config.out, "results", f"{combination.name}.json")


def _verbosity(config):
    return int(config.verbose) if config.verbose.isdigit() else config.verbose


def _compiled_model(plan, combination):
    keras.utils.set_random_seed(plan.config.seed)
    with plan.strategy.scope():
        model = plan.experiment.build_model(plan.config, combination)
        plan.experiment.compile(plan.config, combination, model)
    return model


def run_combination(plan, combination):
    """Trains, evaluates, saves and exports one combination; returns its result dict."""
    experiment, config, name = plan.experiment, plan.config, combination.name
    result_path = _result_path(config, combination)
    if os.path.exists(result_path):
        with open(result_path) as f:
            result = json.load(f)
        if config.export and not exported(result["export"]):  # removed or never finished
            model = keras.saving.load_model(os.path.join(config.out, "models", f"{name}.keras"))
            export(model, result["export"], experiment.input_shape(config, combination))
        return result
    clock = [time.time()]
    keras.utils.set_random_seed(config.seed)
    data = experiment.data(config, combination)
    epochs = experiment.epochs(config, combination)
    hparams = {"combination": name, **experiment.hparams(config, combination)}
    log_dir = os.path.join(config.out, "tensorboard", name)
    core.write_hparams(log_dir, {**hparams, "epochs": epochs})
    checkpoints = os.path.join(config.out, "checkpoints", name)

    def fit(model):
        callbacks = [
            keras.callbacks.TensorBoard(log_dir, write_graph=False),
            core.LearningRateLogger(log_dir),
            *experiment.callbacks(config, combination, data, log_dir),
            core.JsonLinesLogger(os.path.join(config.out, "metrics.jsonl"), hparams),
        ]
        core.fit_resumable(
            model,
            data.train,
            epochs,
            checkpoints,
            validation=data.validation,
            steps_per_epoch=data.steps_per_epoch,
            callbacks=callbacks,
            verbose=_verbosity(config),
        )

    model = _compiled_model(plan, combination)
    try:
        fit(model)
    except core.BrokenBackupError as error:
        print(f"warning: {error} {name} trains again from its first epoch.", flush=True)
        model = _compiled_model(plan, combination)
        fit(model)
    clock.append(time.time())
    values = dict(experiment.evaluate(config, combination, model, data))
    clock.append(time.time())
    result = {
        "combination": name,
        **dataclasses.asdict(combination),
        **values,
        "epochs": epochs,
        **_training_log(config.out, name),
        "test_seconds": round(clock[2] - clock[1], 1),
    }
    os.makedirs(os.path.join(config.out, "models"), exist_ok=True)
    model.save(os.path.join(config.out, "models", f"{name}.keras"))
    if config.export:
        base = os.path.join(config.out, "exports", name)
        result["export"] = export(model, base, experiment.input_shape(config, combination))
    core.write_json(result_path, result)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the result and model are safe now
    clock.append(time.time())
    shown = ", ".join(f"{k} {v:.1f}" for k, v in values.items() if isinstance(v, float))
    print(
        f"   {name}: {shown}; set-up and training {clock[1] - clock[0]:.0f} s, test "
        f"{clock[2] - clock[1]:.0f} s, save and export {clock[3] - clock[2]:.0f} s",
        flush=True,
    )
    return result


def exported(base):
    """True when `base` holds an integer version directory with a `saved_model.pb`."""
    if not os.path.isdir(base):
        return False
    return any(
        re.fullmatch(r"[0-9]+", n) and os.path.isfile(os.path.join(base, n, "saved_model.pb"))
        for n in os.listdir(base)
    )


def export(model, base, input_shape):
    """Exports `model` to `base/<version>/` unless a complete version exists; first
    removes what a killed export left: hidden staging directories and integer
    directories without `saved_model.pb`. Returns `base`."""
    from tfposenc.export import export_saved_model

    if os.path.isdir(base):
        for entry in os.listdir(base):
            path = os.path.join(base, entry)
            stale = entry.startswith(".") or (
                re.fullmatch(r"[0-9]+", entry)
                and not os.path.isfile(os.path.join(path, "saved_model.pb"))
            )
            if stale:
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    if not exported(base):
        export_saved_model(model, base, image_shape=tuple(input_shape[:2]))
    return base


def _training_log(run_dir, name):
    """Epochs trained and their seconds, from the JSON lines (over every restart; an
    epoch logged twice because a kill hit before its backup counts once, last try)."""
    seconds = {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            record = json.loads(line)
            if record.get("combination") == name:
                seconds[record["epoch"]] = record["epoch_seconds"]
    return {"epochs_trained": len(seconds), "train_seconds": round(sum(seconds.values()), 1)}


__all__ = ["Plan", "execute", "export", "exported", "prepare", "run", "run_combination"]
