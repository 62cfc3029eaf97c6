"""The channel-wise experiment, the paper's Table 1: is position encoded channel-wise?

For every grid size k, padding mode, network (GAPNet, PermuteNet) and task (location,
image class) this trains a network on k x k grid canvases, evaluates it as the authors did
(the test split over k^2 passes with fresh random placements, averaged), and writes
`results.json`, `results.md` (the poster's layout, its numbers beside ours, labelled),
`location_accuracy.png`, per-cell heat maps, TensorBoard events, JSON-lines metrics,
checkpoints, `.keras` models and SavedModel exports to the run directory.

Commands and cost (measured on the 2-core CPU machine this project is developed on):

    python -m trainers.channelwise                    # default: embedded digits, ~9 min
    python -m trainers.channelwise --preset smoke     # seconds; what the tests run
    python -m trainers.channelwise --preset paper     # CIFAR-10 at paper scale (GPU)

A run killed at any point resumes when started again with the same command and `--out`:
finished combinations are skipped and the running one continues after its last epoch.
"""

import dataclasses
import json
import os
import shutil
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from tfposenc.data import info, load, make_grid
from tfposenc.layers import CONV_PADDING_MODES
from tfposenc.metrics import PerCellAccuracy
from tfposenc.models import GAPNet, NiNBackbone, PermuteNet, ResNetBackbone
from trainers import config as config_lib
from trainers import core

EXPERIMENT = "channelwise"
NETWORKS = ("gapnet", "permutenet")
TASKS = ("location", "class")
BACKBONES = ("resnet18", "resnet34", "nin")

# The poster's Table 1 (ResNet-18 on CIFAR-10), to print beside our numbers.
POSTER = {
    ("zero", "gapnet"): {"location": (100, 100, 100), "class": (82.6, 82.4, 82.1)},
    ("zero", "permutenet"): {"location": (78.8, 37.8, 21.4), "class": (73.6, 72.2, 69.9)},
    ("reflect", "gapnet"): {"location": (100, 100, 100), "class": (83.8, 83.4, 82.9)},
    ("reflect", "permutenet"): {"location": (78.3, 36.3, 23.2), "class": (71.1, 71.4, 65.7)},
    ("replicate", "gapnet"): {"location": (100, 100, 100), "class": (83.1, 82.9, 82.8)},
    ("replicate", "permutenet"): {"location": (78.3, 40.1, 23.6), "class": (72.0, 71.5, 71.4)},
}
POSTER_GRIDS = (3, 5, 7)


@dataclasses.dataclass
class ChannelwiseConfig:
    """Every knob of the channel-wise experiment, with its default."""

    dataset: str = dataclasses.field(default="digits", metadata={"help": "digits|cifar10|cifar100"})
    data_dir: str | None = dataclasses.field(default=None, metadata={"help": "tfds data directory"})
    grid_sizes: tuple[int, ...] = dataclasses.field(
        default=(3, 5, 7), metadata={"help": "grid sizes k"}
    )
    paddings: tuple[str, ...] = dataclasses.field(
        default=("zero",), metadata={"help": "padding modes"}
    )
    networks: tuple[str, ...] = dataclasses.field(
        default=NETWORKS, metadata={"help": "gapnet permutenet"}
    )
    tasks: tuple[str, ...] = dataclasses.field(default=TASKS, metadata={"help": "location class"})
    backbone: str = dataclasses.field(
        default="resnet18", metadata={"help": "resnet18|resnet34|nin"}
    )
    stem: str = dataclasses.field(default="paper", metadata={"help": "ResNet stem"})
    width: int = dataclasses.field(default=16, metadata={"help": "first-stage width (64 = paper)"})
    cell_size: int | None = dataclasses.field(
        default=None, metadata={"help": "resize images to this cell size"}
    )
    epochs: int | None = dataclasses.field(
        default=None, metadata={"help": "epochs for every k (None: epochs_by_grid)"}
    )
    epochs_by_grid: tuple[int, ...] = dataclasses.field(
        default=(3, 6, 5, 6, 7, 6),
        metadata={"help": "pairs k, epochs used when --epochs is None"},
    )
    batch_size: int = dataclasses.field(default=48, metadata={"help": "global batch size"})
    eval_batch_size: int = dataclasses.field(
        default=256, metadata={"help": "batch size of the final test pass"}
    )
    learning_rate: float = dataclasses.field(default=1e-3, metadata={"help": "Adam learning rate"})
    beta_1: float = dataclasses.field(default=0.5, metadata={"help": "Adam beta_1"})
    beta_2: float = dataclasses.field(default=0.999, metadata={"help": "Adam beta_2"})
    flip: bool = dataclasses.field(
        default=False, metadata={"help": "random horizontal flip in training"}
    )
    train_examples: int | None = dataclasses.field(
        default=None, metadata={"help": "canvases per epoch (None: the train split)"}
    )
    test_examples: int | None = dataclasses.field(
        default=None, metadata={"help": "test images used (None: all)"}
    )
    eval_placement: str = dataclasses.field(
        default="random", metadata={"help": "random (k^2 passes) | all_cells"}
    )
    seed: int = dataclasses.field(default=0, metadata={"help": "random seed"})
    strategy: str = dataclasses.field(default="auto", metadata={"help": "auto|one_device|mirrored"})
    devices: tuple[str, ...] = dataclasses.field(
        default=(), metadata={"help": "devices for mirrored"}
    )
    precision: str = dataclasses.field(
        default="float32", metadata={"help": "float32|mixed_bfloat16|mixed_float16|auto"}
    )
    jit_compile: bool = dataclasses.field(
        default=False, metadata={"help": "XLA (slower on CPU: measure first)"}
    )
    export: bool = dataclasses.field(default=True, metadata={"help": "export SavedModels"})
    out: str = dataclasses.field(default="runs/channelwise", metadata={"help": "run directory"})
    verbose: str = dataclasses.field(
        default="auto", metadata={"help": "Keras verbosity: auto|0|1|2"}
    )

    def __post_init__(self):
        self.grid_sizes = tuple(self.grid_sizes)
        self.paddings = tuple(self.paddings)
        self.networks = tuple(self.networks)
        self.tasks = tuple(self.tasks)
        self.devices = tuple(self.devices)
        self.epochs_by_grid = tuple(self.epochs_by_grid)
        self.validate()

    def validate(self):
        def bad(name, allowed=None):
            value = getattr(self, name)
            hint = f" must be one of {allowed}" if allowed else " is invalid"
            raise ValueError(f"`{name}`{hint}. Received: {name}={value!r}")

        if self.dataset not in ("digits", "cifar10", "cifar100"):
            bad("dataset", ("digits", "cifar10", "cifar100"))
        if not self.grid_sizes or any(not isinstance(k, int) or k < 1 for k in self.grid_sizes):
            raise ValueError(
                f"`grid_sizes` must be ints >= 1. Received: grid_sizes={self.grid_sizes!r}"
            )
        if not self.paddings or any(p not in CONV_PADDING_MODES for p in self.paddings):
            bad("paddings", CONV_PADDING_MODES)
        if not self.networks or any(n not in NETWORKS for n in self.networks):
            bad("networks", NETWORKS)
        if not self.tasks or any(t not in TASKS for t in self.tasks):
            bad("tasks", TASKS)
        if self.backbone not in BACKBONES:
            bad("backbone", BACKBONES)
        for name in ("width", "batch_size", "eval_batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(
                    f"`{name}` must be an int >= 1. Received: {name}={getattr(self, name)!r}"
                )
        if self.epochs is not None and (not isinstance(self.epochs, int) or self.epochs < 1):
            raise ValueError(f"`epochs` must be an int >= 1. Received: epochs={self.epochs!r}")
        pairs = self.epochs_by_grid
        if len(pairs) % 2 or any(e < 1 for e in pairs[1::2]):
            raise ValueError(
                f"`epochs_by_grid` must be pairs (k, epochs >= 1). Received: epochs_by_grid={pairs!r}"
            )
        if self.epochs is None:
            missing = [k for k in self.grid_sizes if k not in pairs[::2]]
            if missing:
                raise ValueError(
                    f"No epochs for grid sizes {missing}: set --epochs or --epochs-by-grid. "
                    f"Received: epochs_by_grid={pairs!r}"
                )
        for name in ("train_examples", "test_examples", "cell_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(
                    f"`{name}` must be an int >= 1 or None. Received: {name}={value!r}"
                )
        if self.eval_placement not in ("random", "all_cells"):
            bad("eval_placement", ("random", "all_cells"))
        if self.strategy not in core.STRATEGIES:
            bad("strategy", core.STRATEGIES)
        if self.precision not in core.PRECISIONS:
            bad("precision", core.PRECISIONS)
        if self.learning_rate <= 0:
            bad("learning_rate")

    def epochs_for(self, grid_size):
        if self.epochs is not None:
            return self.epochs
        pairs = dict(zip(self.epochs_by_grid[::2], self.epochs_by_grid[1::2]))
        return pairs[grid_size]


PRESETS = {
    "default": {},
    "smoke": {
        "grid_sizes": (2,),
        "tasks": ("location",),
        "width": 4,
        "epochs": 2,
        "train_examples": 96,
        "test_examples": 24,
        "batch_size": 24,
        "verbose": "0",
        "out": "runs/channelwise-smoke",
    },
    "paper": {
        "dataset": "cifar10",
        "grid_sizes": (3, 5, 7),
        "paddings": ("zero", "reflect", "replicate"),
        "width": 64,
        "epochs": 20,
        "flip": True,
        "precision": "auto",
        "out": "runs/channelwise-paper",
    },
}


@dataclasses.dataclass
class Combo:
    grid_size: int
    padding: str
    network: str
    task: str

    @property
    def name(self):
        return f"k{self.grid_size}-{self.padding}-{self.network}-{self.task}"


def combos(config):
    return [
        Combo(k, p, n, t)
        for k in config.grid_sizes
        for p in config.paddings
        for n in config.networks
        for t in config.tasks
    ]


def build_model(config, combo, meta):
    """The combination's network, built for its canvas size so that a border mode that
    cannot pad the smallest feature map fails here, before any training."""
    outputs = combo.grid_size**2 if combo.task == "location" else meta.num_classes
    size = (config.cell_size or meta.image_size[0]) * combo.grid_size
    shape = (size, size, 3)
    try:
        if config.backbone == "nin":
            backbone = NiNBackbone(
                padding_mode=combo.padding, width=config.width * 12, input_shape=shape
            )
        else:
            depth = 18 if config.backbone == "resnet18" else 34
            backbone = ResNetBackbone(
                depth, config.stem, config.width, padding_mode=combo.padding, input_shape=shape
            )
    except ValueError as error:
        raise ValueError(
            f"{combo.name}: {size}x{size} canvases are too small for padding "
            f"{combo.padding!r} through {config.backbone} (the deepest feature maps are "
            f"smaller than the pad); use a larger --cell-size or grid size. ({error})"
        ) from None
    if combo.network == "gapnet":
        return GAPNet(backbone, outputs, name="gapnet")
    return PermuteNet(backbone, outputs, seed=config.seed, name="permutenet")


def preflight(config):
    """Builds one backbone per (grid size, padding) so that a combination that cannot run
    fails before anything trains."""
    meta = info(config.dataset)
    for k in config.grid_sizes:
        for padding in config.paddings:
            build_model(config, Combo(k, padding, config.networks[0], config.tasks[0]), meta)


def pipelines(config, combo, meta):
    """Training, validation (one placement pass) and test (k^2 passes) canvases."""
    k = combo.grid_size
    grid = dict(
        grid_size=k, target=combo.task, cell_size=config.cell_size, mean=meta.mean, std=meta.std
    )
    train_src = load(config.dataset, "train", config.data_dir).cache()
    train_size = meta.splits["train"]
    train_src = train_src.shuffle(
        train_size, seed=config.seed, reshuffle_each_iteration=True
    ).repeat()
    steps = -(-(config.train_examples or train_size) // config.batch_size)
    train = make_grid(train_src, flip=config.flip, seed=config.seed, **grid)
    train = train.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    test_src = load(config.dataset, "test", config.data_dir)
    if config.test_examples:
        test_src = test_src.take(config.test_examples)
    test_src = test_src.cache()
    validation = make_grid(test_src, seed=config.seed + 1, **grid).batch(config.batch_size)
    if config.eval_placement == "all_cells":
        test = make_grid(test_src, placement="all_cells", **grid)
    else:
        test = make_grid(test_src, seed=config.seed + 2, passes=k * k, **grid)
    return train, steps, validation, test.batch(config.eval_batch_size).prefetch(tf.data.AUTOTUNE)


class GridSummaries(keras.callbacks.Callback):
    """TensorBoard extras: sample canvases once, a per-cell accuracy heat map per epoch."""

    def __init__(self, log_dir, samples, validation, grid_size, mean, std, heatmap):
        super().__init__()
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "images"))
        self.samples = samples
        self.validation = validation
        self.grid_size = grid_size
        self.mean, self.std = np.array(mean), np.array(std)
        self.heatmap = heatmap

    def on_train_begin(self, logs=None):
        pixels = np.clip(self.samples * self.std + self.mean, 0, 1)
        with self.writer.as_default():
            tf.summary.image("sample_canvases", pixels, step=0, max_outputs=len(pixels))

    def on_epoch_end(self, epoch, logs=None):
        if not self.heatmap:
            return
        _, accuracy, _ = evaluate_grid(self.model, self.validation, self.grid_size)
        with self.writer.as_default():
            tf.summary.image(
                "per_cell_location_accuracy",
                core.figure_to_image(heatmap_figure(accuracy, f"epoch {epoch + 1}")),
                step=epoch,
            )
        self.writer.flush()


def predictor(model):
    """A traced `model(images, training=False)`; unlike `predict_on_batch` it returns
    the whole batch under `MirroredStrategy` too."""
    if not hasattr(model, "_grid_predictor"):
        model._grid_predictor = tf.function(
            lambda images: model(images, training=False), reduce_retracing=True
        )
    return model._grid_predictor


def evaluate_grid(model, dataset, grid_size, location=True):
    """One pass over `(canvases, labels)` batches: accuracy in %, the `[k, k]` per-cell
    accuracy (location task, else None) and the number of canvases, all from the same
    predictions."""
    metric = PerCellAccuracy(grid_size) if location else None
    correct = total = 0
    for images, labels in dataset:
        logits = predictor(model)(images).numpy()
        labels = labels.numpy()
        correct += int(np.sum(np.argmax(logits, axis=-1) == labels))
        total += len(labels)
        if metric is not None:
            metric.update_state(labels, logits)
    per_cell = None if metric is None else keras.ops.convert_to_numpy(metric.result())
    return 100.0 * correct / max(total, 1), per_cell, total


def heatmap_figure(accuracy, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(3.2, 3))
    image = axis.imshow(100 * accuracy, vmin=0, vmax=100, cmap="viridis")
    for (r, c), value in np.ndenumerate(accuracy):
        axis.text(
            c,
            r,
            "-" if np.isnan(value) else f"{100 * value:.0f}",
            ha="center",
            va="center",
            color="w",
            fontsize=7,
        )
    axis.set_title(title, fontsize=8)
    axis.set_xticks([])
    axis.set_yticks([])
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    return figure


def run_combo(config, combo, run_dir, strategy, meta):
    """Trains and evaluates one combination; returns its result dict."""
    result_path = os.path.join(run_dir, "results", f"{combo.name}.json")
    if os.path.exists(result_path):
        with open(result_path) as f:
            return json.load(f)
    clock = {"start": time.time()}
    keras.utils.set_random_seed(config.seed)
    train, steps, validation, test = pipelines(config, combo, meta)
    epochs = config.epochs_for(combo.grid_size)
    with strategy.scope():
        model = build_model(config, combo, meta)
        model.compile(
            optimizer=keras.optimizers.Adam(
                config.learning_rate, beta_1=config.beta_1, beta_2=config.beta_2
            ),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            jit_compile=config.jit_compile,
        )
    log_dir = os.path.join(run_dir, "tensorboard", combo.name)
    extra = dataclasses.asdict(combo) | {"combo": combo.name}
    core.write_hparams(
        log_dir,
        extra
        | {
            "backbone": config.backbone,
            "width": config.width,
            "dataset": config.dataset,
            "epochs": epochs,
        },
    )
    samples = next(iter(validation))[0].numpy()[:3]
    validation = validation.cache()  # fixed placements, the same for every epoch
    callbacks = [
        keras.callbacks.TensorBoard(log_dir, write_graph=False),
        core.LearningRateLogger(log_dir),
        GridSummaries(
            log_dir,
            samples,
            validation,
            combo.grid_size,
            meta.mean,
            meta.std,
            combo.task == "location",
        ),
        core.JsonLinesLogger(os.path.join(run_dir, "metrics.jsonl"), extra),
    ]
    verbose = int(config.verbose) if config.verbose.isdigit() else config.verbose
    print(f"== {combo.name}: {epochs} epochs of {steps} steps", flush=True)
    checkpoints = os.path.join(run_dir, "checkpoints", combo.name)
    core.fit_resumable(
        model,
        train,
        epochs,
        checkpoints,
        validation=validation,
        steps_per_epoch=steps,
        callbacks=callbacks,
        verbose=verbose,
    )
    clock["trained"] = time.time()
    accuracy, per_cell, test_canvases = evaluate_grid(
        model, test, combo.grid_size, location=combo.task == "location"
    )
    result = extra | {
        "accuracy": accuracy,
        "chance": 100.0 / (combo.grid_size**2 if combo.task == "location" else meta.num_classes),
        "epochs": epochs,
        **_training_log(run_dir, combo.name),
        "test_canvases": test_canvases,
    }
    if per_cell is not None:
        os.makedirs(os.path.join(run_dir, "heatmaps"), exist_ok=True)
        heatmap_figure(per_cell, combo.name).savefig(
            os.path.join(run_dir, "heatmaps", f"{combo.name}.png")
        )
        result["per_cell_accuracy"] = np.round(100 * per_cell, 2).tolist()
    clock["evaluated"] = time.time()
    os.makedirs(os.path.join(run_dir, "models"), exist_ok=True)
    model.save(os.path.join(run_dir, "models", f"{combo.name}.keras"))
    if config.export:
        from tfposenc.export import export_saved_model

        size = (config.cell_size or meta.image_size[0]) * combo.grid_size
        base = os.path.join(run_dir, "exports", combo.name)
        if not os.path.isdir(base) or not os.listdir(base):
            export_saved_model(model, base, image_shape=(size, size), mean=meta.mean, std=meta.std)
        result["export"] = base
    os.makedirs(os.path.dirname(result_path), exist_ok=True)
    with open(result_path + ".tmp", "w") as f:
        json.dump(result, f, indent=2)
    os.replace(result_path + ".tmp", result_path)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the result and model are safe now
    clock["done"] = time.time()
    print(
        f"   {combo.name}: test accuracy {result['accuracy']:.1f}% (chance {result['chance']:.1f}%); "
        f"set-up and training {clock['trained'] - clock['start']:.0f} s, test "
        f"{clock['evaluated'] - clock['trained']:.0f} s, save and export "
        f"{clock['done'] - clock['evaluated']:.0f} s",
        flush=True,
    )
    return result


def _training_log(run_dir, name):
    """Epochs trained and their seconds, from the JSON lines (over every restart; an
    epoch logged twice because a kill hit before its backup counts once, last try)."""
    seconds = {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            record = json.loads(line)
            if record.get("combo") == name:
                seconds[record["epoch"]] = record["epoch_seconds"]
    return {"epochs_trained": len(seconds), "train_seconds": round(sum(seconds.values()), 1)}


def poster_value(combo):
    row = POSTER.get((combo["padding"], combo["network"]))
    if row is None or combo["grid_size"] not in POSTER_GRIDS:
        return None
    return row[combo["task"]][POSTER_GRIDS.index(combo["grid_size"])]


def write_results(config, results, run_dir):
    for r in results:
        r["poster"] = poster_value(r)
    with open(os.path.join(run_dir, "results.json"), "w") as f:
        json.dump({"config": config_lib.to_dict(config), "results": results}, f, indent=2)
    by_key = {(r["padding"], r["network"], r["task"], r["grid_size"]): r for r in results}
    ks = config.grid_sizes
    header = ["padding", "network"] + [
        f"location {k}x{k}" for k in ks if "location" in config.tasks
    ]
    header += [f"image class {k}x{k}" for k in ks if "class" in config.tasks]
    lines = [
        f"# Channel-wise position experiment ({config.dataset}, {config.backbone} width {config.width})",
        "",
        "Test accuracy (%) measured by this run; `poster:` is the ICCV 2021 poster's ResNet-18 on",
        "CIFAR-10 at full scale, shown for reference only (different data and scale).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for padding in config.paddings:
        for network in config.networks:
            cells = [padding, network]
            for task in [t for t in ("location", "class") if t in config.tasks]:
                for k in ks:
                    r = by_key.get((padding, network, task, k))
                    if r is None:
                        cells.append("")
                        continue
                    text = f"{r['accuracy']:.1f}"
                    if r["poster"] is not None:
                        text += f" (poster: {r['poster']})"
                    cells.append(text)
            lines.append("| " + " | ".join(cells) + " |")
    chance = ["chance", ""]
    for task in [t for t in ("location", "class") if t in config.tasks]:
        for k in ks:
            chance.append(
                f"{100 / (k * k if task == 'location' else info(config.dataset).num_classes):.1f}"
            )
    lines.append("| " + " | ".join(chance) + " |")
    lines += ["", "| combination | epochs | train s | test canvases |", "|---|---|---|---|"]
    lines += [
        f"| {r['combo']} | {r['epochs_trained']} | {r['train_seconds']} | {r['test_canvases']} |"
        for r in results
    ]
    with open(os.path.join(run_dir, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    plot_location(config, results, run_dir)


def plot_location(config, results, run_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.5))
    for padding in config.paddings:
        for network in config.networks:
            points = sorted(
                (r["grid_size"], r["accuracy"])
                for r in results
                if r["task"] == "location" and r["padding"] == padding and r["network"] == network
            )
            if points:
                style = "-o" if network == "gapnet" else "--s"
                axis.plot(*zip(*points), style, label=f"{network}, {padding}")
    ks = sorted(config.grid_sizes)
    axis.plot(ks, [100 / k**2 for k in ks], ":", color="gray", label="chance")
    axis.set_xlabel("grid size k")
    axis.set_ylabel("location accuracy (%)")
    axis.set_xticks(ks)
    axis.set_ylim(0, 105)
    axis.legend(fontsize=7)
    axis.set_title(f"Location accuracy, {config.dataset}", fontsize=9)
    figure.tight_layout()
    figure.savefig(os.path.join(run_dir, "location_accuracy.png"), dpi=100)
    plt.close(figure)


def run(config):
    """Runs (or resumes) the whole experiment; returns the list of result dicts."""
    run_dir = config.out
    config_lib.write_or_check(config, run_dir, EXPERIMENT)
    preflight(config)
    precision = core.set_precision(config.precision)
    strategy = core.make_strategy(config.strategy, config.devices)
    meta = info(config.dataset)
    print(
        f"channelwise: {len(combos(config))} combinations, {strategy.num_replicas_in_sync} "
        f"replica(s), {precision}, run directory {run_dir}",
        flush=True,
    )
    results = [run_combo(config, combo, run_dir, strategy, meta) for combo in combos(config)]
    write_results(config, results, run_dir)
    return results


def main(argv=None):
    parser = config_lib.parser_for(ChannelwiseConfig, PRESETS, __doc__.splitlines()[0])
    args = parser.parse_args(argv)
    try:
        config = config_lib.from_args(ChannelwiseConfig, args, PRESETS)
        config_lib.write_or_check(config, config.out, EXPERIMENT)
        preflight(config)
    except ValueError as error:
        parser.error(str(error))
    start = time.time()
    run(config)
    with open(os.path.join(config.out, "results.md")) as f:
        print(f.read())
    print(f"done in {time.time() - start:.0f} s; results in {config.out}")


if __name__ == "__main__":
    sys.exit(main())
