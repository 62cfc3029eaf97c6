"""The generic runner: the resumable loop over an experiment's combinations.

`prepare(experiment, config)` checks everything before anything is written: the config,
that `config.out` is writable and new or holds this same config, the data of the first
combination, and every combination's model (built for its input size and run once on
zeros: the preflight). `execute(plan)` then writes `config.json` and, for combination
i of N (printing elapsed time and an estimate of the time left):

    seed -> data -> build -> compile -> resumable fit -> evaluate -> save .keras
    -> export SavedModel -> results/<name>.json (atomic) -> drop the backup

and finally `results.json`, `results.md` (the experiment's section, then the cost of each
combination) and the experiment's figures. `config.json` and `results.json` record the
strategy and the replicas in sync under `distribution`. Killed at any point and started again with
the same config and `--out`, finished combinations are skipped and the running one
resumes after its last finished epoch; a broken backup is set aside and that combination
retrained (saying so); a NaN loss stops the run with `core.NonFiniteLossError` and
reports nothing.

With `--strategy multi_worker` (`trainers.distributed`) every worker runs this same
program and trains with `distributed.fit_multi_worker` instead of `fit`; the chief writes
the run directory, every other worker writes the same files to a temporary directory of
its own that is removed at the end (it evaluates, saves and exports too: saving may
need every worker), and which combinations are finished is the chief's answer.

Extension points are the `trainers.experiment.Experiment` hooks; the run directory is:

    config.json  metrics.jsonl  results.json  results.md  results/<name>.json
    tensorboard/<name>/  checkpoints/<name>/ (until done)  models/<name>.keras
    exports/<name>/<version>/  (and whatever the experiment's `report` draws)
"""

import dataclasses
import json
import os
import shutil
import time

import keras

from trainers import config as config_lib
from trainers import core, distributed, reports
from trainers.runner_export import _read_json, _result_path, _training_log, export, exported


@dataclasses.dataclass
class Plan:
    """A checked run: what `execute` needs."""

    experiment: object
    config: object
    combinations: list
    strategy: object
    precision: str
    task: object = None  # a `distributed.Task` under the multi_worker strategy

    @property
    def is_chief(self):
        return self.task is None or self.task.is_chief

    @property
    def distribution(self):
        """What `config.json` and `results.json` record about the strategy."""
        return {
            "strategy": type(self.strategy).__name__,
            "replicas_in_sync": self.strategy.num_replicas_in_sync,
            "workers": 1 if self.task is None else self.task.num_workers,
        }


def prepare(experiment, config):
    """Checks the run without writing anything; returns a `Plan`.

    Raises:
        ValueError: an unusable `out`, a different config in it, or a combination whose
            model cannot be built or run (the message names the combination).
        tfposenc.data.DatasetNotFoundError: the dataset is not prepared.
    """
    task = None
    if config.strategy == "multi_worker":  # first: TF_CONFIG, and before any TF op
        strategy, task = distributed.make_strategy(config.collective)
    combinations = list(experiment.combinations(config))
    names = [c.name for c in combinations]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"Combination names must be unique and non-empty. Received: {names}")
    if task is None or task.is_chief:  # the other workers write to temporary directories
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
    if task is None:
        strategy = core.make_strategy(config.strategy, config.devices)
    return Plan(experiment, config, combinations, strategy, precision, task)


def _duration(seconds):
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def execute(plan):
    """Runs (or resumes) a prepared plan; returns the list of result dicts.

    On a multi-worker plan's non-chief worker everything is written to a temporary
    directory, removed at the end; it returns the results it computed (None for the
    combinations the chief had finished) and writes no report.
    """
    if not plan.is_chief:
        scratch = distributed.worker_directory(plan.task)
        worker_plan = dataclasses.replace(
            plan, config=dataclasses.replace(plan.config, out=scratch)
        )
        try:
            return _execute(worker_plan)
        finally:
            distributed.remove_worker_directory(scratch)
    return _execute(plan)


def _execute(plan):
    experiment, config = plan.experiment, plan.config
    config_lib.write_config(config, experiment.name)
    core.write_json(
        os.path.join(config.out, "config.json"),
        {**_read_json(os.path.join(config.out, "config.json")), "distribution": plan.distribution},
    )
    total = len(plan.combinations)
    where = (
        ""
        if plan.task is None
        else (
            f", {plan.task.label} of {plan.task.num_workers} workers"
            f"{' (chief)' if plan.is_chief else ''}"
        )
    )
    print(
        f"{experiment.name}: {total} combinations, {plan.strategy.num_replicas_in_sync} "
        f"replica(s) in sync{where}, {plan.precision}, run directory {config.out}",
        flush=True,
    )
    start, trained, results = time.time(), 0, []
    finished = _finished(plan)
    todo = len(finished) - sum(finished)
    for index, combination in enumerate(plan.combinations, 1):
        done_before = finished[index - 1]
        elapsed = time.time() - start
        left = f", about {_duration(elapsed / trained * (todo - trained))} left" if trained else ""
        status = "finished earlier" if done_before else f"elapsed {_duration(elapsed)}{left}"
        print(f"combination {index} of {total}: {combination.name} ({status})", flush=True)
        results.append(run_combination(plan, combination, done_before))
        trained += not done_before
    if plan.is_chief:
        section = experiment.report(config, results, config.out)
        reports.write_results(config.out, experiment.name, config, results, section)
        path = os.path.join(config.out, "results.json")
        extra = {"distribution": plan.distribution}
        if getattr(config, "push_to", None):
            from trainers.delivery import push_exports

            extra["pushes"] = push_exports(config, plan.combinations)
        core.write_json(path, {**_read_json(path), **extra})
    if plan.task is not None:
        distributed.broadcast_number(plan.strategy, 1)  # workers end after the chief's report
    return results


def _finished(plan):
    """Which combinations have a result, as the chief sees its run directory."""
    finished = [os.path.exists(_result_path(plan.config, c)) for c in plan.combinations]
    if plan.task is None:
        return finished
    import tensorflow as tf

    flags = tf.constant([int(f) for f in finished], tf.int64)
    shared = distributed.broadcast_from_chief(plan.strategy, [flags])[0]
    return [bool(f) for f in shared.numpy()]


def run(experiment, config):
    """`prepare`, then `execute`: runs or resumes the whole experiment."""
    return execute(prepare(experiment, config))


def _verbosity(config):
    return int(config.verbose) if config.verbose.isdigit() else config.verbose


def _compiled_model(plan, combination):
    keras.utils.set_random_seed(plan.config.seed)
    with plan.strategy.scope():
        model = plan.experiment.build_model(plan.config, combination)
        plan.experiment.compile(plan.config, combination, model)
    return model


def run_combination(plan, combination, finished=None):
    """Trains, evaluates, saves and exports one combination; returns its result dict.

    `finished`: whether the combination has a result already (default: its file exists);
    a non-chief worker returns None for it.
    """
    experiment, config, name = plan.experiment, plan.config, combination.name
    result_path = _result_path(config, combination)
    if finished is None:
        finished = os.path.exists(result_path)
    if finished and not plan.is_chief:
        return None
    if finished:
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
        options = dict(
            validation=data.validation,
            steps_per_epoch=data.steps_per_epoch,
            callbacks=callbacks,
            verbose=_verbosity(config),
        )
        if plan.task is None:
            core.fit_resumable(model, data.train, epochs, checkpoints, **options)
        else:  # the same contract on every worker of a multi-worker cluster
            distributed.fit_multi_worker(
                model, plan.strategy, plan.task, data.train, epochs, checkpoints, **options
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


__all__ = ["Plan", "execute", "export", "exported", "prepare", "run", "run_combination"]
