"""The files of a run directory: atomic JSON, result paths, exports and the training log.

One home for what the runner, the configs, the reports and the delivery write and read
back: `write_json` (atomic: a reader sees the old or the new file), `read_json`,
`check_writable`, `result_path`, `export` / `exported` (a SavedModel version under
`exports/<name>/`, the version rule of `tfposenc.export`) and `training_log` (epochs and
seconds from `metrics.jsonl`). Importing this module does not import TensorFlow.
"""

import json
import os
import shutil
import tempfile


def write_json(path, value):
    """Writes `value` as JSON to `path` atomically (a reader sees the old or the new file)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, indent=2)
    os.replace(path + ".tmp", path)


def write_text(path, text):
    """Writes `text` to `path` atomically."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def read_json(path, default=None):
    """The JSON value in `path`; `default` when the file does not exist (if given)."""
    if default is not None and not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def check_writable(path, name="out"):
    """Raises ValueError unless a directory can be created (or written) at `path`.

    Probes with a temporary file in `path` or its nearest existing parent, which works
    for root too (where permission bits say nothing), and creates nothing that stays.
    """
    path = os.path.abspath(path)
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    reason = None
    if not os.path.isdir(probe):
        reason = f"{probe} is a file, not a directory"
    else:
        try:
            with tempfile.TemporaryFile(dir=probe):
                pass
        except OSError as error:
            reason = f"{probe} is not writable ({error.strerror or error})"
    if reason:
        raise ValueError(
            f"`{name}` must be a writable directory: {reason}. Received: {name}={path!r}"
        )


def result_path(out, combination):
    """`out/results/<name>.json`: the finished combination's record."""
    return os.path.join(out, "results", f"{combination.name}.json")


def _exporting():
    """`tfposenc.export`, imported on first use: it imports TensorFlow, and this module
    does not (the configs and the command line write and read JSON with it)."""
    from tfposenc import export as library  # noqa: PLC0415 (TensorFlow; see above)

    return library


def exported(base):
    """True when `base` holds a complete version (a `saved_model.pb` in it)."""
    return bool(_exporting().versions(base))


def export(model, base, input_shape):
    """Exports `model` to `base/<version>/` unless a complete version exists; first
    removes what a killed export left: hidden staging directories and version
    directories without `saved_model.pb`. Returns `base`."""
    library = _exporting()
    if os.path.isdir(base):
        for entry in os.listdir(base):
            path = os.path.join(base, entry)
            stale = entry.startswith(".") or (
                library.is_version_name(entry)
                and not os.path.isfile(os.path.join(path, "saved_model.pb"))
            )
            if stale:
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    if not exported(base):
        library.export_saved_model(model, base, image_shape=tuple(input_shape[:2]))
    return base


def metrics_records(out):
    """The records of `out/metrics.jsonl` (one per trained epoch), [] before any."""
    path = os.path.join(out, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def training_log(out, name):
    """Epochs trained and their seconds, from the JSON lines (over every restart; an
    epoch logged twice because a kill hit before its backup counts once, last try)."""
    seconds = {}
    for record in metrics_records(out):
        if record.get("combination") == name:
            seconds[record["epoch"]] = record["epoch_seconds"]
    return {"epochs_trained": len(seconds), "train_seconds": round(sum(seconds.values()), 1)}


__all__ = [
    "check_writable",
    "export",
    "exported",
    "metrics_records",
    "read_json",
    "result_path",
    "training_log",
    "write_json",
    "write_text",
]
