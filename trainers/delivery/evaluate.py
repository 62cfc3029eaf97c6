"""Model validation of a push candidate: evaluation data, metrics and thresholds.

`evaluate` scores the candidate and the served version through their `serving_default`
signatures on the same batches; `run_test_data` rebuilds the test set of the run that
exported the candidate through its experiment's declared `evaluation_data` hook (found
by name in `trainers.framework.registry`), and `grid_test_set` builds canvases named by
flags; `checks` applies `min_value` and `max_regression`.
"""

import dataclasses
import json
import os

import keras
import numpy as np
import tensorflow as tf

from tfposenc.metrics.accuracy import top1_hits
from tfposenc.vocabulary import PUSH_METRICS
from trainers.framework import registry, test_sets
from trainers.framework.experiment import TestSet

METRICS = PUSH_METRICS  # top-1 accuracy in %, higher is better (per pixel for maps)


def evaluate(paths, dataset):
    """Top-1 `accuracy` (%) and `examples` of each SavedModel in `paths` (`{key: path}`)
    on `dataset`: a `TestSet` (its `images` and `labels`; labels per image or per pixel,
    `ignore_class` not scored) or `(float pixels 0..255, int labels)` batches. Pixels
    are sent as rounded uint8, all models in one pass: test sets drawn with fresh random
    placements on every iteration give every model the same canvases. Returns `{key:
    metrics}`, with `{"error": message}` for a model that cannot be loaded or run."""
    ignore = None
    if isinstance(dataset, TestSet):
        dataset, ignore = dataset.pairs(), dataset.ignore_class
    signatures, results, counts = {}, {}, {}
    for key, path in paths.items():
        try:
            signatures[key] = tf.saved_model.load(path).signatures["serving_default"]
            counts[key] = [0, 0, 0]
        except Exception as error:  # noqa: BLE001 - reported, the caller decides
            results[key] = {"error": f"{type(error).__name__}: {error}"}
    for images, labels in dataset:
        pixels = tf.cast(tf.clip_by_value(tf.round(images), 0, 255), tf.uint8)
        labels = labels.numpy()
        scored = np.ones(labels.shape, bool) if ignore is None else labels != ignore
        for key in list(signatures):
            try:
                outputs = signatures[key](images=pixels)
            except Exception as error:  # noqa: BLE001
                results[key] = {"error": f"{type(error).__name__}: {error}"}
                del signatures[key]
                continue
            if "classes" in outputs:  # the served argmax
                hits = outputs["classes"].numpy() == labels
            else:
                hits = top1_hits(outputs.get("logits", outputs.get("probabilities")), labels)
            counts[key][0] += int(np.sum(hits & scored))
            counts[key][1] += int(np.sum(scored))
            counts[key][2] += int(labels.shape[0])
    for key in signatures:
        correct, total, images = counts[key]
        results[key] = {"accuracy": 100.0 * correct / max(total, 1), "examples": images}
    return results


def run_test_data(run_dir, combination, experiments=None):
    """The test set the run at `run_dir` evaluated `combination` (a name) on, as a
    `TestSet`, and a description of it: the `evaluation_data` hook of the run's
    experiment (`experiments`, `{name: Experiment}`, else the framework's registry).

    Raises:
        ValueError: the run's experiment is not registered or has no such combination.
    """
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    name = config.get("experiment")
    experiment = (experiments or {}).get(name) or registry.experiment(name)
    known = {f.name for f in dataclasses.fields(experiment.config_class)}
    resolved = experiment.config_class(**{k: v for k, v in config.items() if k in known})
    chosen = [c for c in experiment.combinations(resolved) if c.name == combination]
    if not chosen:
        raise ValueError(
            f"The {name} run at {run_dir} has no combination {combination!r}; pass "
            f"--eval-data. Received: eval_run={run_dir!r}"
        )
    keras.utils.set_random_seed(experiment.seed(resolved, chosen[0]))  # as the runner
    description = {
        "source": "run",
        "run": os.path.abspath(run_dir),
        "combination": combination,
        "via": f"trainers.{name} evaluation_data hook",
    }
    return experiment.evaluation_data(resolved, chosen[0]), description


def grid_test_set(
    dataset, grid_size, task, cell_size=None, examples=None, seed=0, placement="all_cells",
    data_dir=None, batch_size=64,
):  # fmt: skip
    """`--eval-data`: the grid test set of `trainers.framework.test_sets` (by default
    every one of `examples` test images in every cell), batched, as a `TestSet`."""
    canvases = test_sets.grid_test_set(
        dataset, grid_size, task, cell_size=cell_size, examples=examples, seed=seed,
        placement=placement, data_dir=data_dir,
    )  # fmt: skip
    return TestSet(canvases.batch(batch_size))


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
