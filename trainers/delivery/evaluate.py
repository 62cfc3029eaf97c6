"""Model validation of a push candidate: evaluation data, metrics and thresholds.

`evaluate` scores the candidate and the served version through their `serving_default`
signatures on the same batches; `run_test_data` rebuilds the test set of the run that
exported the candidate (its experiment's `data` hook, or grid canvases as its
`config.json` and the combination's record describe them) and `grid_test_set` builds
canvases named by flags; `checks` applies `min_value` and `max_regression`.
"""

import dataclasses
import json
import os

METRICS = ("accuracy",)  # top-1 accuracy in %, higher is better


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


def run_test_data(run_dir, combination, experiments=None):
    """The test set the run at `run_dir` evaluated `combination` (a name) on, and a
    description of it: the experiment's own `data` hook when `experiments` (`{name:
    Experiment}`) has the run's experiment; otherwise grid canvases as `config.json` and
    `results/<combination>.json` describe them.

    Raises:
        ValueError: neither the experiment nor the combination's record is available.
    """
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    description = {"source": "run", "run": os.path.abspath(run_dir), "combination": combination}
    experiment = (experiments or {}).get(config.get("experiment"))
    if experiment is not None:
        known = {f.name for f in dataclasses.fields(experiment.config_class)}
        resolved = experiment.config_class(**{k: v for k, v in config.items() if k in known})
        chosen = [c for c in experiment.combinations(resolved) if c.name == combination]
        if chosen:
            import keras

            keras.utils.set_random_seed(experiment.seed(resolved, chosen[0]))  # as the runner
            description["via"] = f"trainers.{experiment.name} data hook"
            return experiment.data(resolved, chosen[0]).test, description
    path = os.path.join(run_dir, "results", f"{combination}.json")
    if not os.path.exists(path):
        raise ValueError(
            f"Cannot rebuild the test set of combination {combination!r}: its experiment "
            f"{config.get('experiment')!r} is unknown and {path} does not exist; pass "
            f"--eval-data. Received: eval_run={run_dir!r}"
        )
    with open(path) as f:
        record = json.load(f)
    description["via"] = "config.json grid canvases"
    return grid_test_set(
        config["dataset"],
        int(record["grid_size"]),
        record["task"],
        cell_size=config.get("cell_size"),
        examples=config.get("test_examples"),
        seed=config.get("seed", 0) + 2,
        placement=config.get("eval_placement", "random"),
        data_dir=config.get("data_dir"),
    ), description


def grid_test_set(
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


def checks(metric, candidate, baseline, min_value, max_regression):
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


__all__ = ["METRICS", "checks", "evaluate", "grid_test_set", "run_test_data"]
