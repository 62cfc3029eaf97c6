"""The generic runner: the resumable loop over an experiment's combinations.

`prepare(experiment, config)` checks everything before anything is written: the config,
that `config.out` is writable and new or holds this same config, every combination's
data (pipelines built, not iterated) and model (built for its input size and run once
on zeros: the preflight). `execute(plan)` then writes `config.json` and, for
combination i of N (printing the elapsed time and an estimate of the time left,
weighted by each combination's training steps and input size):

    seed -> data -> build -> compile -> resumable fit -> evaluate -> save .keras
    -> export SavedModel -> results/<name>.json (atomic) -> drop the backup

and finally, on the process that writes, `results.md` (the experiment's section, then
the cost of each combination), its figures and `results.json`, then the pushes of
`--push-to` (`trainers.framework.summary`). A combination whose `load_path` names a
`.keras` file is loaded and evaluated as it is: no training phase. Killed at
any point and started again with the same config and `--out`, finished combinations
are skipped and the running one resumes after its last finished epoch ("resuming ...
from epoch N"); a broken backup is set aside and that combination retrained (saying so);
a NaN loss stops the run with `NonFiniteLossError` and reports nothing.

How the process trains, whether it writes and how decisions are shared is its engine's
business (`trainers.framework.engines`); the hooks are `Experiment`'s
(`trainers.framework.experiment`). The run directory is:

    config.json  metrics.jsonl  results.json  results.md  results/<name>.json
    tensorboard/<name>/ (one run per combination)  tensorboard/report/ (the
    hparams table, results.md and the claims as text, the figures)  checkpoints/<name>/
    (while it trains; removed once its result is safe, `checkpoints/` once empty)
    models/<name>.keras (unless --no-save-models)  exports/<name>/<version>/ (unless
    --no-export)
"""

import dataclasses
import os
import shutil
import time

import keras

from trainers.framework import artifacts, progress, strategy, summary
from trainers.framework.backup import BrokenBackupError
from trainers.framework.callbacks import (
    JsonLinesLogger,
    StepTimer,
    TensorBoardLogger,
    write_hparams,
    write_scalars,
)
from trainers.framework.config import check_resume, write_config


@dataclasses.dataclass
class Plan:
    """A checked run: what `execute` needs."""

    experiment: object
    config: object
    combinations: list
    engine: object
    precision: str
    hparam_keys: tuple = None  # the hparams that differ between combinations (None: all)


def prepare(experiment, config):
    """Checks the run without writing anything; returns a `Plan`.

    Raises:
        ValueError: an unusable `out`, a different config in it, or a combination whose
            data or model cannot be built or run (the message names the combination).
        tfposenc.data.DatasetNotFoundError: a dataset is not prepared.
    """
    engine = strategy.make_engine(config)  # first: a multi-worker engine needs no TF op before
    combinations = list(experiment.combinations(config))
    names = [c.name for c in combinations]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"Combination names must be unique and non-empty. Received: {names}")
    if engine.writes:  # the other workers write to temporary directories
        artifacts.check_writable(config.out)
        check_resume(config, experiment.name)
    precision = strategy.set_precision(config.precision)
    for combination in combinations:
        try:
            experiment.data(config, combination)
            source = experiment.load_path(config, combination)
            if source is None:
                model = experiment.build_model(config, combination)
            else:
                model = keras.saving.load_model(source, compile=False)
            experiment.check_model(config, combination, model)
        except ValueError as error:
            raise ValueError(
                f"{combination.name}: {error}{progress.flags_hint(config, combination)}"
            ) from error
        del model
    keras.backend.clear_session()
    return Plan(
        experiment,
        config,
        combinations,
        engine,
        precision,
        varying_hparams(plan_hparams(experiment, config, combinations)),
    )


def plan_hparams(experiment, config, combinations):
    return [experiment.hparams(config, c) for c in combinations]


def varying_hparams(hparams):
    """The hparam names whose values differ between combinations (every name for one)."""
    if len(hparams) <= 1:
        return tuple(hparams[0]) if hparams else ()
    names = list(dict.fromkeys(k for h in hparams for k in h))
    return tuple(n for n in names if len({repr(h.get(n)) for h in hparams}) > 1)


def execute(plan):
    """Runs (or resumes) a prepared plan; returns the list of per-combination records
    (None for a combination another process finished, on a process that does not write)."""
    with plan.engine.directory(plan.config.out) as out:
        return _execute(dataclasses.replace(plan, config=dataclasses.replace(plan.config, out=out)))


def _execute(plan):
    experiment, config, engine = plan.experiment, plan.config, plan.engine
    write_config(config, experiment.name)
    config_path = os.path.join(config.out, "config.json")
    artifacts.write_json(
        config_path, {**artifacts.read_json(config_path), "distribution": engine.description}
    )
    total = len(plan.combinations)
    replicas = engine.strategy.num_replicas_in_sync
    print(
        f"{experiment.name}: {total} combinations, {replicas} replica(s) in sync"
        f"{engine.place}, {plan.precision}, run directory {config.out}",
        flush=True,
    )
    finished = engine.agree(
        [os.path.exists(artifacts.result_path(config.out, c)) for c in plan.combinations]
    )
    weights = [progress.work(experiment, config, c) for c in plan.combinations]
    remaining = sum(w for w, f in zip(weights, finished) if not f)
    start, done, records = time.time(), 0, []
    for index, combination in enumerate(plan.combinations, 1):
        elapsed = time.time() - start
        if finished[index - 1]:
            status = "finished earlier"
        else:
            left = progress.time_left(elapsed, done, remaining - done)
            status = f"elapsed {progress.duration(elapsed)}" + (
                f", about {progress.duration(left)} left" if left is not None else ""
            )
        print(f"combination {index} of {total}: {combination.name} ({status})", flush=True)
        records.append(run_combination(plan, combination, finished[index - 1]))
        done += 0 if finished[index - 1] else weights[index - 1]
    if engine.writes:
        summary.write_results(plan, records)
    engine.finish()
    return records


def run(experiment, config):
    """`prepare`, then `execute`: runs or resumes the whole experiment."""
    return execute(prepare(experiment, config))


def _compiled_model(plan, combination, budget):
    experiment, config = plan.experiment, plan.config
    keras.utils.set_random_seed(experiment.seed(config, combination))
    with plan.engine.strategy.scope():
        model = experiment.build_model(config, combination)
        model.compile(
            optimizer=experiment.optimizer(config, combination, budget),
            loss=experiment.loss(config, combination),
            metrics=experiment.metrics(config, combination),
            jit_compile=config.jit_compile,
        )
    return model


def run_combination(plan, combination, finished=None):
    """Trains, evaluates, saves and exports one combination; returns its record.

    `finished`: whether the combination has a result already (default: its file exists);
    a process that does not write returns None for it.
    """
    experiment, config, name = plan.experiment, plan.config, combination.name
    path = artifacts.result_path(config.out, combination)
    if finished is None:
        finished = os.path.exists(path)
    if finished and not plan.engine.writes:
        return None
    if finished:
        record = artifacts.read_json(path)
        if config.export and not artifacts.exported(record["export"]):  # removed or never done
            saved = os.path.join(config.out, "models", f"{name}.keras")
            if not os.path.exists(saved):  # --no-save-models: nothing to export from
                print(f"warning: {name} has no export and no saved model ({saved}); "
                      "its result stands, not exported.", flush=True)  # fmt: skip
                return record
            model = keras.saving.load_model(saved)
            artifacts.export(model, record["export"], experiment.input_shape(config, combination))
        return record
    clock = [time.time()]
    keras.utils.set_random_seed(experiment.seed(config, combination))
    data = experiment.data(config, combination)
    budget = experiment.budget(config, combination)
    hparams = {"combination": name, **experiment.hparams(config, combination)}
    log_dir = os.path.join(config.out, "tensorboard", name)
    shown = plan.hparam_keys if plan.hparam_keys is not None else tuple(hparams)
    write_hparams(log_dir, {k: v for k, v in hparams.items() if k == "combination" or k in shown})
    checkpoints = os.path.join(config.out, "checkpoints", name)
    resumed = progress.resumed_epoch(checkpoints)
    if resumed:
        print(f"   resuming {name} from epoch {resumed} of {budget.epochs}", flush=True)
    timer = StepTimer()

    def fit(model):
        callbacks = [
            TensorBoardLogger(
                log_dir,
                budget.steps_per_epoch,
                validation_name=experiment.validation_name(config, combination),
            ),
            timer,
            *experiment.callbacks(config, combination, data, log_dir),
            JsonLinesLogger(
                os.path.join(config.out, "metrics.jsonl"),
                {**hparams, "steps_per_epoch": budget.steps_per_epoch},
            ),
        ]
        plan.engine.fit(
            model,
            data.train,
            budget.epochs,
            checkpoints,
            validation=data.validation,
            steps_per_epoch=budget.steps_per_epoch,
            callbacks=callbacks,
            verbose=progress.verbosity(config),
        )

    source = experiment.load_path(config, combination)
    if source is None:
        model = _compiled_model(plan, combination, budget)
        try:
            fit(model)
        except BrokenBackupError as error:
            print(f"warning: {error} {name} trains again from its first epoch.", flush=True)
            model = _compiled_model(plan, combination, budget)
            fit(model)
        trained = progress.trained_with(model.optimizer, budget, config.batch_size)
    else:  # the explicit load path: evaluated as it is, no training phase
        print(f"   {name}: loaded from {source}, not trained", flush=True)
        model = keras.saving.load_model(source, compile=False)
        trained = progress.not_trained()
    clock.append(time.time())
    values = dict(experiment.evaluate(config, combination, model, data))
    if "figures" in values:  # `{stem: matplotlib figure}`: PNG files and TensorBoard images
        values["figures"] = summary.write_figures(config.out, log_dir, values["figures"])
    write_scalars(log_dir, values, budget.steps, prefix="test/")  # hparams metrics
    clock.append(time.time())
    log = artifacts.training_log(config.out, name)
    record = {
        "combination": name,
        **dataclasses.asdict(combination),
        **values,
        **trained,
        **log,
        "step_seconds": timer.seconds() or progress.logged_step_seconds(config.out, name, budget),
        "test_seconds": round(clock[2] - clock[1], 1),
    }
    if config.save_models:
        os.makedirs(os.path.join(config.out, "models"), exist_ok=True)
        experiment.model_to_save(config, combination, model).save(
            os.path.join(config.out, "models", f"{name}.keras")
        )
    if config.export:
        base = os.path.join(config.out, "exports", name)
        shape = experiment.input_shape(config, combination)
        record["export"] = artifacts.export(
            experiment.model_to_export(config, combination, model), base, shape
        )
    artifacts.write_json(path, record)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the result and model are safe now
    remove_if_empty(os.path.dirname(checkpoints))
    clock.append(time.time())
    if not plan.engine.writes:  # its values are the writer's; nothing here reads as a result
        return record
    print(
        f"   {name}: {progress.headline(values)}; set-up and training {clock[1] - clock[0]:.0f} s, test "
        f"{clock[2] - clock[1]:.0f} s, save and export {clock[3] - clock[2]:.0f} s",
        flush=True,
    )
    return record


def remove_if_empty(directory):
    """Removes `directory` when it exists and is empty (`checkpoints/` after the last
    combination's backup is dropped); leaves it otherwise."""
    try:
        os.rmdir(directory)
    except OSError:  # absent, or holds another combination's backup
        pass


# `write_results` and `failed_pushes` live in `trainers.framework.summary`; kept here
# under their earlier names for callers of `runner.write_results`.
write_results = summary.write_results
failed_pushes = summary.failed_pushes

__all__ = ["Plan", "execute", "failed_pushes", "prepare", "run", "run_combination"]
