"""The channel-wise experiment, the paper's Table 1: is position encoded channel-wise?

For every grid size k, padding mode, network and task (location, image class) and seed
this trains a network on k x k grid canvases of raw pixels (the models normalise
inside), evaluates it as the authors did (the test split over k^2 passes with fresh
random placements, averaged; the model of the last epoch, no selection), and writes
`results.md` (Table 1's layout, mean +/- std over seeds, the feature-map geometry, what
each row isolates, the border rows and the PermuteNet learning curves' verdict),
`results.json` (one record per combination over seeds), `location_accuracy.png`,
`learning_curves.png`, per-cell heat maps (location and class), TensorBoard events,
JSON-lines metrics, `.keras` models and SavedModel exports.

Networks: `gapnet` (the paper's: 3x3 head conv, global pooling, no dense),
`gapnet1x1` (1x1 head: the same function as `classifier`), `classifier` (pooling and
dense: the un-shuffled control), `permutenet` (the pooled channels shuffled on every
call, then dense) and `sortnet` (the pooled channels sorted, then dense; beyond the
paper). Order-free networks (PermuteNet, SortNet) learn far more slowly, so they get
their own budget (`--order-free-epochs`, learning rate and beta_1). The border rows
train GAPNet for location at `--border-grid-size` with circular padding, circular +
BlurPool and circular + APS (zero for reference).

Commands and cost (measured on the 2-core CPU machine this project is developed on):

    python -m trainers.channelwise                    # default: embedded digits, see below
    python -m trainers.channelwise --seeds 0 1 2      # three seeds, mean +/- std
    python -m trainers.channelwise --preset smoke     # ~30 s; what the tests run
    python -m trainers.channelwise --preset paper     # CIFAR-10 at paper scale (GPU)

A run killed at any point resumes when started again with the same command and `--out`.
"""

import dataclasses

from trainers import vocabulary
from trainers.config import TrainConfig, option
from trainers.experiment import Experiment

NETWORKS = ("gapnet", "gapnet1x1", "classifier", "permutenet", "sortnet")
ORDER_FREE = ("permutenet", "sortnet")
TASKS = ("location", "class")
# The border rows: (padding mode, downsampling) of GAPNet location at the border grid size.
BORDER_ROWS = (
    ("zero", "stride"),
    ("circular", "stride"),
    ("circular", "blur"),
    ("circular", "aps"),
)


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
    networks: tuple[str, ...] = option(
        ("gapnet", "classifier", "permutenet"), "networks", choices=NETWORKS
    )
    tasks: tuple[str, ...] = option(TASKS, "targets: the cell or the image class", choices=TASKS)
    seeds: tuple[int, ...] | None = option(
        None, "run every combination once per seed, report mean +/- std (None: --seed)", minimum=0
    )
    epochs: int = option(2, "epochs of GAPNet, the classifier and the border rows")
    order_free_epochs: int = option(40, "epochs of PermuteNet and SortNet")
    order_free_learning_rate: float | None = option(
        3e-3, "Adam learning rate of PermuteNet and SortNet (None: --learning-rate)", minimum=0.0
    )
    order_free_beta_1: float | None = option(
        0.9, "Adam beta_1 of PermuteNet and SortNet (None: --beta-1)", minimum=0.0
    )
    border_grid_size: int | None = option(
        4, "grid size of the border rows (GAPNet location: circular, + blur, + APS); None: none"
    )
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

    def validate(self):
        super().validate()
        rate, beta = self.order_free_learning_rate, self.order_free_beta_1
        if rate is not None and not rate > 0:
            raise ValueError(f"`order_free_learning_rate` must be > 0. Received: {rate!r}")
        if beta is not None and not 0 <= beta < 1:
            raise ValueError(f"`order_free_beta_1` must be in [0, 1). Received: {beta!r}")

    @property
    def seed_list(self):
        return self.seeds if self.seeds is not None else (self.seed,)


PRESETS = {
    "default": {},
    "smoke": {
        "grid_sizes": (2,),
        "tasks": ("location",),
        "networks": ("classifier", "permutenet"),
        "border_grid_size": None,
        "width": 4,
        "epochs": 2,
        "order_free_epochs": 2,
        "train_examples": 96,
        "test_examples": 24,
        "batch_size": 24,
        "verbose": "0",
        "out": "runs/channelwise-smoke",
    },
    "paper": {
        "dataset": "cifar10",
        "padding_modes": ("zero", "reflect", "replicate"),
        "networks": ("gapnet", "classifier", "permutenet"),
        "width": 64,
        "epochs": 20,
        "order_free_epochs": 20,
        "order_free_learning_rate": None,
        "order_free_beta_1": None,
        "border_grid_size": None,
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
    downsampling: str = "stride"
    seed: int = 0

    @property
    def group(self):
        """The name shared by every seed of this combination."""
        sampling = "" if self.downsampling == "stride" else f"-{self.downsampling}"
        return f"k{self.grid_size}-{self.padding_mode}{sampling}-{self.network}-{self.task}"

    @property
    def name(self):
        return self.group + (f"-s{self.seed}" if self.seed else "")


class Channelwise(Experiment):
    name = "channelwise"
    config_class = ChannelwiseConfig
    presets = PRESETS
    description = __doc__.splitlines()[0]
    prog = "python -m trainers.channelwise"

    def combinations(self, config):
        table = [
            Combination(k, mode, network, task, seed=seed)
            for seed in config.seed_list
            for k in config.grid_sizes
            for mode in config.padding_modes
            for network in config.networks
            for task in config.tasks
        ]
        border = []
        if config.border_grid_size is not None:
            border = [
                Combination(config.border_grid_size, mode, "gapnet", "location", sampling, seed)
                for seed in config.seed_list
                for mode, sampling in BORDER_ROWS
            ]
        return table + [c for c in border if c not in table]

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
        import keras

        from tfposenc.data import info
        from tfposenc.models import Classifier, GAPNet, PermuteNet, SortNet, build_backbone

        keras.utils.set_random_seed(combination.seed)  # each seed its own initial weights
        options = dict(
            padding_mode=combination.padding_mode,
            downsampling=combination.downsampling,
            input_shape=self.input_shape(config, combination),
        )
        if config.backbone == "nin":
            backbone = build_backbone("nin", width=12 * config.width, **options)
        else:
            backbone = build_backbone(
                config.backbone, stem=config.stem, width=config.width, **options
            )
        meta, network = info(config.dataset), combination.network
        outputs = self.num_outputs(config, combination)
        stats = dict(mean=meta.mean, std=meta.std, name=network)
        if network in ("gapnet", "gapnet1x1"):
            return GAPNet(
                backbone, outputs, head_kernel_size=3 if network == "gapnet" else 1, **stats
            )
        if network == "classifier":
            return Classifier(backbone, outputs, **stats)
        if network == "sortnet":
            return SortNet(backbone, outputs, **stats)
        return PermuteNet(backbone, outputs, seed=combination.seed, **stats)

    def epochs(self, config, combination):
        if combination.network in ORDER_FREE:
            return config.order_free_epochs
        return config.epochs

    def compile(self, config, combination, model):
        if combination.network in ORDER_FREE:
            config = dataclasses.replace(
                config,
                learning_rate=config.order_free_learning_rate or config.learning_rate,
                beta_1=config.beta_1
                if config.order_free_beta_1 is None
                else config.order_free_beta_1,
            )
        super().compile(config, combination, model)

    def steps_per_epoch(self, config):
        from tfposenc.data import info

        train_size = info(config.dataset).splits["train"]
        return -(-(config.train_examples or train_size) // config.batch_size)

    def data(self, config, combination):
        from trainers.channelwise_data import canvases

        return canvases(config, combination, self.steps_per_epoch(config))

    def hparams(self, config, combination):
        return {
            **dataclasses.asdict(combination),
            "group": combination.group,
            "steps_per_epoch": self.steps_per_epoch(config),
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
        from trainers.channelwise_data import class_per_cell

        k = combination.grid_size
        verbose = 0 if config.verbose == "0" else 1
        title = f"   {combination.name}: test ({k * k} passes)"
        if combination.task == "location":
            yield from evaluators.grid_location(model, data.test, k, verbose, title)
        else:
            yield from class_per_cell(model, data.test, k, verbose, title)
        yield "chance", 100.0 / self.num_outputs(config, combination)
        yield "feature_map_size", list(model.backbone.output_shape[1:3])
        yield "steps", data.steps_per_epoch * self.epochs(config, combination)

    def report(self, config, results, run_dir):
        """Replaces the per-seed `results` (in place: the runner writes what the list
        holds to `results.json`) by one record per combination over seeds; returns
        the markdown section and draws the figures."""
        from trainers.channelwise_report import report
        from trainers.channelwise_results import aggregate

        results[:] = aggregate(results)
        return report(config, results, run_dir)


EXPERIMENT = Channelwise()


def main(argv=None):
    """`python -m trainers.channelwise` and the `tfposenc-channelwise` console script."""
    return EXPERIMENT.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
