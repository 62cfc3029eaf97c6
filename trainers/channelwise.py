"""The channel-wise experiment, the paper's Table 1: is position encoded channel-wise?

For every grid size k, padding mode, network (GAPNet, PermuteNet) and task (location,
image class) this trains a network on k x k grid canvases of raw pixels (the models
normalise inside), evaluates it as the authors did (the test split over k^2 passes with
fresh random placements, averaged), and writes `results.md` (the poster's layout, its
numbers beside ours, labelled), `results.json`, `location_accuracy.png`, per-cell heat
maps, TensorBoard events, JSON-lines metrics, `.keras` models and SavedModel exports.

Commands and cost (measured on the 2-core CPU machine this project is developed on):

    python -m trainers.channelwise                    # default: embedded digits, ~9 min idle (12.9 min at load 5-8)
    python -m trainers.channelwise --preset smoke     # ~20 s; what the tests run
    python -m trainers.channelwise --preset paper     # CIFAR-10 at paper scale (GPU)

A run killed at any point resumes when started again with the same command and `--out`.
"""

import dataclasses

from trainers import vocabulary
from trainers.config import TrainConfig, option
from trainers.experiment import Data, Experiment

NETWORKS = ("gapnet", "permutenet")
TASKS = ("location", "class")

# The poster's Table 1 (ResNet-18 on CIFAR-10), printed beside our numbers.
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
class ChannelwiseConfig(TrainConfig):
    """Every knob of the channel-wise experiment, with its default."""

    dataset: str = option("digits", "image source", choices=vocabulary.DATASETS[:3])
    grid_sizes: tuple[int, ...] = option((3, 5, 7), "grid sizes k (k x k cells per canvas)")
    padding_modes: tuple[str, ...] = option(
        ("zero",),
        "border mode of every padded conv, one run each",
        choices=vocabulary.PADDING_MODES,
        aliases=("--paddings",),
    )
    networks: tuple[str, ...] = option(NETWORKS, "networks", choices=NETWORKS)
    tasks: tuple[str, ...] = option(TASKS, "targets: the cell or the image class", choices=TASKS)
    backbone: str = option("resnet18", "backbone", choices=vocabulary.BACKBONES)
    stem: str = option("paper", "ResNet stem", choices=vocabulary.STEMS)
    width: int = option(16, "ResNet first-stage width, 64 = paper (NiN: 12 x this)")
    cell_size: int | None = option(None, "resize images to this cell size (None: theirs)")
    flip: bool = option(False, "random horizontal flip in training")
    train_examples: int | None = option(None, "canvases per epoch (None: the train split)")
    test_examples: int | None = option(None, "test images used (None: all)")
    eval_placement: str = option(
        "random", "test placements: k^2 random passes or every cell", choices=vocabulary.PLACEMENTS
    )
    out: str = option("runs/channelwise", "run directory (resumed when it exists)")


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
        "padding_modes": ("zero", "reflect", "replicate"),
        "width": 64,
        "epochs": 20,
        "flip": True,
        "precision": "auto",
        "out": "runs/channelwise-paper",
    },
}


@dataclasses.dataclass(frozen=True)
class Combination:
    grid_size: int
    padding_mode: str
    network: str
    task: str

    @property
    def name(self):
        return f"k{self.grid_size}-{self.padding_mode}-{self.network}-{self.task}"


class Channelwise(Experiment):
    name = "channelwise"
    config_class = ChannelwiseConfig
    presets = PRESETS
    description = __doc__.splitlines()[0]
    prog = "python -m trainers.channelwise"

    def combinations(self, config):
        return [
            Combination(k, mode, network, task)
            for k in config.grid_sizes
            for mode in config.padding_modes
            for network in config.networks
            for task in config.tasks
        ]

    def input_shape(self, config, combination):
        from tfposenc.data import info

        size = (config.cell_size or info(config.dataset).image_size[0]) * combination.grid_size
        return (size, size, 3)

    def num_outputs(self, config, combination):
        from tfposenc.data import info

        if combination.task == "location":
            return combination.grid_size**2
        return info(config.dataset).num_classes

    def build_model(self, config, combination):
        from tfposenc.data import info
        from tfposenc.models import GAPNet, PermuteNet, build_backbone

        shape = self.input_shape(config, combination)
        options = dict(padding_mode=combination.padding_mode, input_shape=shape)
        if config.backbone == "nin":
            backbone = build_backbone("nin", width=12 * config.width, **options)
        else:
            backbone = build_backbone(
                config.backbone, stem=config.stem, width=config.width, **options
            )
        meta = info(config.dataset)
        outputs = self.num_outputs(config, combination)
        stats = dict(mean=meta.mean, std=meta.std, name=combination.network)
        if combination.network == "gapnet":
            return GAPNet(backbone, outputs, **stats)
        return PermuteNet(backbone, outputs, seed=config.seed, **stats)

    def data(self, config, combination):
        """Training canvases, validation (one fixed placement pass) and test (k^2 passes
        with fresh placements, or every cell), in pixels with mean-colour empty cells."""
        import tensorflow as tf

        from tfposenc.data import info, load, make_grid

        meta, k = info(config.dataset), combination.grid_size
        grid = dict(
            grid_size=k, target=combination.task, cell_size=config.cell_size, mean=meta.mean
        )
        train_size = meta.splits["train"]
        source = load(config.dataset, "train", config.data_dir).cache()
        source = source.shuffle(train_size, seed=config.seed, reshuffle_each_iteration=True)
        train = make_grid(source.repeat(), flip=config.flip, seed=config.seed, **grid)
        train = train.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
        steps = -(-(config.train_examples or train_size) // config.batch_size)
        test_source = load(config.dataset, "test", config.data_dir)
        if config.test_examples:
            test_source = test_source.take(config.test_examples)
        samples = make_grid(test_source.take(3), seed=config.seed + 1, **grid).batch(3)
        test_source = test_source.cache()
        validation = make_grid(test_source, seed=config.seed + 1, **grid)
        if config.eval_placement == "all_cells":
            test = make_grid(test_source, placement="all_cells", **grid)
        else:
            test = make_grid(test_source, seed=config.seed + 2, passes=k * k, **grid)
        return Data(
            train,
            steps,
            validation.batch(config.batch_size).cache(),  # the same placements every epoch
            test.batch(config.eval_batch_size),
            extra={"samples": samples},
        )

    def hparams(self, config, combination):
        return {
            **dataclasses.asdict(combination),
            "backbone": config.backbone,
            "width": config.width,
            "dataset": config.dataset,
        }

    def callbacks(self, config, combination, data, log_dir):
        from trainers.summaries import GridSummaries

        heatmap = combination.task == "location"
        k = combination.grid_size
        return [GridSummaries(log_dir, data.extra["samples"], data.validation, k, heatmap)]

    def evaluate(self, config, combination, model, data):
        from trainers import evaluators

        k = combination.grid_size
        verbose = 0 if config.verbose == "0" else 1
        title = f"   {combination.name}: test ({k * k} passes)"
        if combination.task == "location":
            yield from evaluators.grid_location(model, data.test, k, verbose, title)
        else:
            yield from evaluators.classification(model, data.test, verbose, title)
        yield "chance", 100.0 / self.num_outputs(config, combination)

    def report(self, config, results, run_dir):
        """Table 1's layout (`poster:` values labelled), the location plot, heat maps."""
        import os

        from trainers import reports

        for r in results:
            r["poster"] = poster_value(r)
            if r.get("per_cell_accuracy"):
                figure = reports.heatmap_figure(r["per_cell_accuracy"], r["combination"])
                reports.save_figure(
                    figure, os.path.join(run_dir, "heatmaps", f"{r['combination']}.png")
                )
        series = {}
        for r in results:
            if r["task"] == "location":
                label = f"{r['network']}, {r['padding_mode']}"
                style = "-o" if r["network"] == "gapnet" else "--s"
                series.setdefault(label, (style, []))[1].append((r["grid_size"], r["accuracy"]))
        if series:
            chance = ("chance", [(k, 100 / k**2) for k in config.grid_sizes])
            figure = reports.line_figure(
                series, "grid size k", "location accuracy (%)",
                f"Location accuracy, {config.dataset}", reference=chance,
            )  # fmt: skip
            reports.save_figure(figure, os.path.join(run_dir, "location_accuracy.png"))
        return table(config, results)


def poster_value(result):
    row = POSTER.get((result["padding_mode"], result["network"]))
    if row is None or result["grid_size"] not in POSTER_GRIDS:
        return None
    return row[result["task"]][POSTER_GRIDS.index(result["grid_size"])]


def table(config, results):
    """Markdown lines in the poster's layout: a row per (padding mode, network)."""
    from trainers.reports import markdown_table

    by_key = {(r["padding_mode"], r["network"], r["task"], r["grid_size"]): r for r in results}
    tasks = [t for t in TASKS if t in config.tasks]
    names = {"location": "location", "class": "image class"}
    header = ["padding", "network"]
    header += [f"{names[t]} {k}x{k}" for t in tasks for k in config.grid_sizes]
    rows, chance = [], ["chance", ""]
    for mode in config.padding_modes:
        for network in config.networks:
            cells = [mode, network]
            for task in tasks:
                for k in config.grid_sizes:
                    r = by_key.get((mode, network, task, k))
                    poster = "" if r is None or r["poster"] is None else f" (poster: {r['poster']})"
                    cells.append("" if r is None else f"{r['accuracy']:.1f}{poster}")
            rows.append(cells)
    for task in tasks:
        for k in config.grid_sizes:
            r = next((r for r in results if r["task"] == task and r["grid_size"] == k), None)
            chance.append("" if r is None else f"{r['chance']:.1f}")
    return [
        f"# Channel-wise position experiment ({config.dataset}, {config.backbone} width {config.width})",
        "",
        "Test accuracy (%) measured by this run; `poster:` is the ICCV 2021 poster's ResNet-18 on",
        "CIFAR-10 at full scale, shown for reference only (different data and scale).",
        "",
        *markdown_table(header, rows + [chance]),
    ]


EXPERIMENT = Channelwise()


def main(argv=None):
    """`python -m trainers.channelwise` and the `tfposenc-channelwise` console script."""
    return EXPERIMENT.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
