"""Loading the model, the brief digit training, the conversion and the probes."""

import json
import os
import socket
import sys
import time

import keras
import tensorflow as tf

from tfposenc.analysis.position_probe import position_probe
from tfposenc.convert import convert_model
from tfposenc.data import info, load_digits_arrays, make_grid
from tfposenc.models import Backbone, Classifier
from trainers.probe.report import write_reports

IMAGENET_HOST = ("storage.googleapis.com", 443)


def log(message):
    print(f"[probe] {message}", flush=True)


def _imagenet_reachable(name):
    cache = os.path.join(os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras")), "models")
    if os.path.isdir(cache) and any(name.lower() in f.lower() for f in os.listdir(cache)):
        return True
    try:
        socket.create_connection(IMAGENET_HOST, timeout=3).close()
        return True
    except OSError:
        return False


def load_model(config, parser):
    """The model named by `--model`, with a fixed square input of `--input-size`."""
    spec, size = config.model, config.input_size
    if spec.startswith("keras.applications."):
        name = spec.split(".", 2)[2]
        builder = getattr(keras.applications, name, None)
        if not callable(builder) or name[:1].islower():
            parser.error(f"argument --model: keras.applications has no model {name!r}")
        weights, path = config.weights, None
        if weights == "none":
            weights = None
        elif weights == "imagenet":
            if not _imagenet_reachable(name):
                parser.error(
                    "argument --weights: imagenet weights are downloaded from "
                    f"{IMAGENET_HOST[0]}, which cannot be reached (no network); use "
                    "--weights none or a weights file"
                )
        else:
            if not os.path.isfile(weights):
                parser.error(f"argument --weights: no such file {weights!r}")
            weights, path = None, config.weights
        try:
            model = builder(
                weights=weights,
                include_top=False,
                input_shape=(size, size, 3),
                **config.model_kwargs,
            )
        except (TypeError, ValueError) as error:
            parser.error(f"argument --model-kwargs: {name} refused them ({error})")
        if path is not None:
            model.load_weights(path)
        return model
    if spec.startswith("keras_hub:"):
        try:
            import keras_hub
        except ImportError:
            parser.error(
                "argument --model: keras_hub:PRESET needs keras-hub (pip install tfposenc[hub])"
            )
        model = keras_hub.models.Backbone.from_preset(spec.split(":", 1)[1])
    elif spec.endswith(".keras"):
        if not os.path.isfile(spec):
            parser.error(f"argument --model: no such file {spec!r}")
        model = keras.saving.load_model(spec, compile=False)
    else:
        parser.error(
            "argument --model: must be keras.applications.NAME, PATH.keras or "
            f"keras_hub:PRESET (received {spec!r})"
        )
    if tuple(model.input.shape[1:3]) != (size, size):
        inputs = keras.Input((size, size, 3))
        model = keras.Model(inputs, model(inputs), name=model.name)
    return model


def pretrain(model, config, digits):
    """Digit classification on random grid canvases for `pretrain_steps` steps."""
    if config.pretrain_steps == 0:
        return None
    stats = info("digits")
    keras.utils.set_random_seed(config.seed)
    task = Classifier(Backbone.from_model(model), 10, mean=stats.mean, std=stats.std)
    images, labels = digits
    dataset = make_grid(
        tf.data.Dataset.from_tensor_slices((images, labels)).repeat(),
        config.grid_size,
        "class",
        cell_size=config.input_size // config.grid_size,
        mean=stats.mean,
        seed=config.seed,
    )
    dataset = dataset.shuffle(256, seed=config.seed).batch(config.batch_size)
    task.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=False,  # XLA is several times slower on CPU
    )
    history = task.fit(
        dataset,
        shuffle=False,
        steps_per_epoch=config.pretrain_steps,
        epochs=1,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    return {name: float(values[-1]) for name, values in history.history.items()}


def run(config, parser):
    start = time.perf_counter()
    os.makedirs(config.out, exist_ok=True)
    with open(os.path.join(config.out, "config.json"), "w") as f:
        json.dump(config.to_dict(), f, indent=2)
    keras.utils.set_random_seed(config.seed)
    model = load_model(config, parser)
    variants = [("original", "zero", "stride", model, [])]
    if config.convert_padding_mode is not None:
        mode, down = config.convert_padding_mode, config.convert_downsampling
        began = time.perf_counter()
        try:
            converted, changes = convert_model(model, mode, down)
        except ValueError as error:
            parser.error(f"argument --convert-downsampling: {error}")
        log(
            f"converted to {mode}/{down} in {time.perf_counter() - began:.1f} s: "
            f"{len(changes)} layers replaced or inserted"
        )
        variants.append((f"{mode}/{down}", mode, down, converted, changes))
    train_digits = load_digits_arrays("train")
    test_images, test_labels = load_digits_arrays("test")
    count = min(config.images, len(test_images))
    stats = info("digits")
    records = []
    for name, mode, down, variant_model, changes in variants:
        began = time.perf_counter()
        log(f"{name}: training {config.pretrain_steps} steps on digit grid canvases")
        trained = pretrain(variant_model, config, train_digits)
        log(f"{name}: probing ({', '.join(config.readouts)}; {config.steps} steps each)")
        result = position_probe(
            variant_model,
            test_images[:count],
            test_labels[:count],
            grid_size=config.grid_size,
            readouts=config.readouts,
            steps=config.steps,
            frozen=config.frozen,
            batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            mean=stats.mean,
            std=stats.std,
            seed=config.seed,
            verbose=1 if sys.stdout.isatty() else 0,
            padding_mode=mode,  # GAPNet's head pads like the model it reads
        )
        for readout, scores in result["readouts"].items():
            log(
                f"{name}: {readout}: location {100 * scores['location']:.1f} %, "
                f"class {100 * scores['class']:.1f} %"
            )
        records.append(
            {
                "name": name,
                "padding_mode": mode,
                "downsampling": down,
                "changes": [list(c) for c in changes],
                "pretrain": trained,
                "probe": result,
                "seconds": time.perf_counter() - began,
            }
        )
    write_reports(config, records, time.perf_counter() - start)
    log(f"wrote {config.out}/results.md, results.json, probe.png and TensorBoard events")
    return records
