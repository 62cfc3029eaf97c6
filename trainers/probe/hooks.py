"""The probe's TensorFlow side: the model and its conversions, the pretraining data, and
the measurement (`tfposenc.analysis.position_probe`) as the combination's values."""

import tensorflow as tf

from tfposenc.analysis import position_probe
from tfposenc.data import info, load_digits_arrays, make_grid
from tfposenc.models import Backbone, Classifier
from trainers.framework.experiment import Data
from trainers.framework.progress import verbosity
from trainers.probe.models import converted, load_model
from trainers.probe.report import wilson_interval


def build_model(config, combination):
    """`(task, changes)`: a digit `Classifier` over the model (or its converted copy,
    weights copied) and the conversion report (`[]` for the model as given)."""
    model, changes = load_model(config), []
    padding_mode = "zero"
    if combination.conversion is not None:
        padding_mode, downsampling = combination.conversion
        model, changes = converted(model, padding_mode, downsampling)
    # GAPNet's head pads like the model it reads.
    backbone = Backbone.from_model(model, padding_mode=padding_mode)
    stats = info(config.dataset)
    task = Classifier(backbone, stats.num_classes, mean=stats.mean, std=stats.std)
    return task, [list(change) for change in changes]


def data(config, combination):
    """Pretraining: digit classification on random grid canvases (training split);
    `extra` holds the first `--images` test digits the probe places in every cell."""
    stats = info(config.dataset)
    images, labels = load_digits_arrays("train")
    train = make_grid(
        tf.data.Dataset.from_tensor_slices((images, labels)).repeat(),
        config.grid_size,
        "class",
        cell_size=config.input_size // config.grid_size,
        mean=stats.mean,
        seed=combination.seed,
    )
    train = train.shuffle(256, seed=combination.seed).batch(config.batch_size)
    test_images, test_labels = load_digits_arrays("test")
    extra = {"images": test_images[: config.images], "labels": test_labels[: config.images]}
    return Data(train=train, validation=None, test=None, extra=extra)


def evaluate(config, combination, task, data, changes):
    """Yields the probe's values: each read-out's accuracies (%) with their 95 % Wilson
    intervals, chance, the channel ranking, the ablation curve and the settings."""
    stats = info(config.dataset)
    result = position_probe(
        task.backbone,
        data.extra["images"],
        data.extra["labels"],
        grid_size=config.grid_size,
        readouts=config.readouts,
        steps=config.steps,
        frozen=not config.fine_tune,
        batch_size=config.batch_size,
        eval_batch_size=config.eval_batch_size,
        learning_rate=config.learning_rate,
        mean=stats.mean,
        std=stats.std,
        seed=combination.seed,
        verbose=1 if verbosity(config) == 1 else 0,
        padding_mode=task.backbone.padding_mode,
        num_classes=stats.num_classes,
    )
    count = result["test_canvases"]
    intervals = {}
    for readout, scores in result["readouts"].items():
        for target, accuracy in scores.items():
            if accuracy is not None:
                yield f"{readout}_{target}", round(100 * accuracy, 2)
                low, high = wilson_interval(round(accuracy * count), count)
                intervals[f"{readout}_{target}"] = [round(100 * low, 2), round(100 * high, 2)]
    yield "intervals", intervals
    yield "chance", {k: None if v is None else 100 * v for k, v in result["chance"].items()}
    halving = result["halving_fraction"]
    yield "channels_removed_to_halve", None if halving is None else 100 * halving
    yield "examples", count
    keys = ("grid_size", "cell_size", "num_channels", "frozen", "steps", "train_images")
    yield "probe", {**{k: result[k] for k in keys}, "test_images": result["test_images"]}
    yield "ranking", result["ranking"]
    yield (
        "ablation",
        [{**entry, "location": round(100 * entry["location"], 2)} for entry in result["ablation"]],
    )
    yield "conversion", changes


__all__ = ["build_model", "data", "evaluate"]
