"""What the runner tells the user and records: progress, time left, what a combination
trained with, and where its figures are. Helpers of `trainers.framework.runner`."""

import dataclasses
import math
import os
import sys

from trainers.framework import artifacts


def flags_hint(config, combination):
    """ " Flags that set this combination: --a, --b (it has a=..., b=...)", naming the
    config fields (`grid_sizes`) behind the combination's fields (`grid_size`). The
    combination's `seed` is never named: it does not decide whether a model or its data
    can be built, and naming `--seeds` on every error misled."""
    fields = {k: v for k, v in dataclasses.asdict(combination).items() if k != "seed"}
    flags, values = [], []
    for field in dataclasses.fields(config):
        for name, value in fields.items():
            if field.name in (name, name + "s"):
                flags.append("--" + field.name.replace("_", "-"))
                values.append(f"{name}={value!r}")
    if not flags:
        return ""
    return f". Flags that set this combination: {', '.join(flags)} (it has {', '.join(values)})"


def duration(seconds):
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def work(experiment, config, combination):
    """The relative cost of one combination (the ETA's weight): its training steps times
    the square root of its input's pixels. Measured on the channel-wise default run (2
    idle cores): 24, 40 and 56-px canvases took 12.5, 17 and 26 s per combination of 180
    steps, time growing with the side rather than the area (per-step and per-combination
    overheads dominate at these sizes); weighted by the area the estimate was 2x too
    long, by the side within 15% from the fifth combination on."""
    height, width = experiment.input_shape(config, combination)[:2]
    return experiment.budget(config, combination).steps * math.sqrt(height * width)


def time_left(elapsed, done, remaining):
    """The estimated seconds left: `elapsed` seconds bought `done` work; `remaining` is
    left (both in `work` units). None before any work is done."""
    return elapsed / done * remaining if done else None


def verbosity(config, stream=None):
    """Keras' verbosity: `auto` is progress bars on a terminal, one line per epoch
    when the output goes to a file or a pipe (no ANSI escapes in logs)."""
    if config.verbose != "auto":
        return int(config.verbose)
    stream = sys.stdout if stream is None else stream
    return 1 if getattr(stream, "isatty", lambda: False)() else 2


def trained_with(optimizer, budget, batch_size):
    """What a combination trained with, for its record."""
    rate = optimizer.get_config()["learning_rate"]
    if isinstance(rate, dict):  # a schedule: its initial rate
        rate = rate.get("config", {}).get("initial_learning_rate")
    beta_1 = getattr(optimizer, "beta_1", None)
    return {
        "epochs": budget.epochs,
        "steps": budget.steps,
        "batch_size": batch_size,
        "optimizer": type(optimizer).__name__,
        "learning_rate": None if rate is None else float(f"{float(rate):.7g}"),  # float32 noise off
        "beta_1": None if beta_1 is None else float(beta_1),
    }


def not_trained():
    """The record's training fields of a model loaded, not trained (the load path)."""
    return {
        "epochs": 0,
        "steps": 0,
        "batch_size": None,
        "optimizer": None,
        "learning_rate": None,
        "beta_1": None,
    }


def resumed_epoch(checkpoints):
    try:
        return artifacts.read_json(
            os.path.join(checkpoints, "backup", "state", "training_metadata.json")
        )["epoch"]
    except (OSError, ValueError, KeyError):
        return None


def headline(values):
    """The progress line's numbers: every float, and the floats one level inside a dict
    (e.g. `miou overall 54.0`)."""
    shown = []
    for key, value in values.items():
        if isinstance(value, float):
            shown.append(f"{key} {value:.1f}")
        elif isinstance(value, dict):
            inner = [(k, v) for k, v in value.items() if isinstance(v, float)][:4]
            shown += [f"{key} {k} {v:.1f}" for k, v in inner]
    return ", ".join(shown)


def logged_step_seconds(out, name, budget):
    """Seconds per step from `metrics.jsonl` (its fastest epoch, validation included)
    when no step was timed in this process (a run resumed after its last epoch); None
    for a combination that trained no step."""
    seconds = [
        r["epoch_seconds"] for r in artifacts.metrics_records(out) if r.get("combination") == name
    ]
    if not seconds or not budget.steps_per_epoch:
        return None
    return min(seconds) / budget.steps_per_epoch


def report_figures(out):
    """`{relative path: path}` of the report's PNG figures in the run directory."""
    found = {}
    for folder, subfolders, files in os.walk(out):
        subfolders[:] = [
            s for s in subfolders if s not in ("tensorboard", "models", "exports", "checkpoints")
        ]
        for name in sorted(files):
            if name.endswith(".png"):
                path = os.path.join(folder, name)
                found[os.path.relpath(path, out)] = path
    return dict(sorted(found.items()))


# What the runner adds to every record (not a test value of the experiment's).
RECORD_KEYS = (
    "epochs", "steps", "batch_size", "optimizer", "learning_rate", "beta_1",
    "epochs_trained", "train_seconds", "step_seconds", "test_seconds",
)  # fmt: skip


def test_metrics(combinations, records):
    """The names of the numeric values `evaluate` yielded (the `test/<name>` scalars):
    the records' numbers less the combination's fields and what the runner adds."""
    fields = {f.name for c in combinations for f in dataclasses.fields(c)}
    names = {}
    for record in records:
        for key, value in (record or {}).items():
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if numeric and key not in fields and key not in RECORD_KEYS:
                names[key] = True
    return list(names)


__all__ = [
    "duration",
    "flags_hint",
    "headline",
    "logged_step_seconds",
    "not_trained",
    "report_figures",
    "resumed_epoch",
    "test_metrics",
    "time_left",
    "trained_with",
    "verbosity",
    "work",
]
