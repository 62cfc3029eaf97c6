"""What the runner writes and reads back per combination: exports and result files.

`export` writes a SavedModel version under `exports/<name>/` unless a complete one exists
(first removing what a killed export left), `exported` tells whether one does,
`_training_log` sums a combination's epochs and seconds from `metrics.jsonl`, and
`_result_path`/`_read_json` locate and read the JSON results. Moved out of
`trainers.runner`, which re-exports these names.
"""

import json
import os
import re
import shutil


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def _result_path(config, combination):
    return os.path.join(config.out, "results", f"{combination.name}.json")


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
