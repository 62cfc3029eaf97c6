"""The position attack: rank the position-encoding channels, remove them, measure by region.

For every padding mode this trains (or loads, `--models RUN_DIR`) a `Segmenter` on digit
segmentation canvases and a GAPNet location model on grid canvases; ranks the pooled
backbone channels by position information (the authors' flip ranking, on training
canvases, never the evaluation split); removes the top-ranked vs random channels at each
fraction with no retraining (`tfposenc.analysis.ablation_sweep`); and measures the damage
by region (segmentation: mIoU overall / left / right / centre / periphery; location:
accuracy on the border ring vs the inner cells). It also scores the border artifacts of
every backbone stage on a constant input. Writes `results.md`, `results.json` (with the
lists `sweep` and `artifacts`), `sweep-<padding>-<task>.png`, `qualitative-<padding>.png`
(canvas, truth, prediction after random and after ranked removal), `feature-maps-*.png`
and the same pictures to TensorBoard.

Commands and cost (measured on the 2-core CPU machine this project is developed on):

    python -m trainers.attack                    # default: digits, ~7 min
    python -m trainers.attack --preset smoke     # ~30 s; what the tests run
    python -m trainers.attack --preset paper     # Cityscapes, DeepLabv3-style ResNet-50 (GPU)
    python -m trainers.attack --models runs/channelwise --location-grid-size 5

`--models` reuses the GAPNet location models `models/k<k>-<padding>-gapnet-location.keras`
of a channel-wise run (its dataset and cell size must match) and any segmenter of an
earlier attack run in that directory; the rest is trained.
"""

import dataclasses
import os

from trainers import vocabulary
from trainers.config import TrainConfig, option
from trainers.experiment import Data, Experiment

TASKS = ("segmentation", "location")
RANKINGS = ("flip", "flip_left", "flip_right", "label")  # tfposenc.analysis.RANKING_METHODS
FRACTIONS = (0.0, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95)


@dataclasses.dataclass
class AttackConfig(TrainConfig):
    """Every knob of the position attack, with its default."""

    dataset: str = option("digits", "segmentation source", choices=("digits", "cityscapes"))
    padding_modes: tuple[str, ...] = option(
        ("zero", "circular"), "border modes, one model per task each",
        choices=vocabulary.PADDING_MODES, aliases=("--paddings",),
    )  # fmt: skip
    tasks: tuple[str, ...] = option(TASKS, "models attacked", choices=TASKS)
    models: str | None = option(None, "load models from this run directory (channel-wise)")
    backbone: str = option("resnet18", "backbone of both tasks", choices=vocabulary.BACKBONES)
    stem: str = option("paper", "ResNet stem", choices=vocabulary.STEMS)
    width: int = option(16, "ResNet first-stage width, 64 = paper")
    output_stride: int = option(8, "segmenter backbone's output stride (8 or 16, dilated)")
    head_channels: int = option(32, "channels of the segmenter's 3x3 head conv")
    grid_size: int = option(3, "digits per side of a segmentation canvas")
    cell_size: int = option(24, "segmentation cell size (digits are resized to it)")
    image_size: tuple[int, ...] = option((512, 1024), "Cityscapes height width after resizing")
    epochs: int = option(8, "segmenter training epochs")
    train_examples: int = option(640, "segmentation canvases (images) per epoch")
    test_examples: int = option(160, "segmentation canvases (images) evaluated")
    segmentation_learning_rate: float = option(4e-3, "segmenter Adam learning rate", minimum=0.0)
    location_dataset: str = option("digits", "location source", choices=vocabulary.DATASETS[:3])
    location_grid_size: int = option(5, "location grid size k")
    location_cell_size: int | None = option(None, "location cell size (None: the images')")
    location_epochs: int = option(6, "location training epochs")
    location_train_examples: int | None = option(None, "location canvases per epoch")
    location_test_examples: int = option(40, "test images, each placed in every cell")
    ranking: str = option("flip", "channel ranking method", choices=RANKINGS)
    rank_examples: int = option(600, "training canvases the channels are ranked on")
    fractions: tuple[float, ...] = option(FRACTIONS, "fractions of the channels removed")
    random_draws: int = option(3, "random channel sets per fraction")
    table_fractions: tuple[float, ...] = option((0.05, 0.2, 0.8), "fractions in results.md")
    figure_fraction: float = option(0.2, "fraction removed in the qualitative figure", minimum=0.0)
    figure_examples: int = option(3, "canvases in the qualitative figure")
    constant_value: float = option(128.0, "pixel value of the constant artifact input", minimum=0.0)
    export: bool = option(False, "export a SavedModel per combination")
    out: str = option("runs/attack", "run directory (resumed when it exists)")

    def validate(self):
        super().validate()
        for name in ("fractions", "table_fractions"):
            if any(not 0 <= f <= 1 for f in getattr(self, name)):
                raise ValueError(
                    f"`{name}` must be in [0, 1]. Received: {name}={getattr(self, name)!r}"
                )
        if self.output_stride not in (8, 16):
            raise ValueError(
                f"`output_stride` must be 8 or 16. Received: output_stride={self.output_stride!r}"
            )
        if self.models is not None and not os.path.isdir(os.path.join(self.models, "models")):
            raise ValueError(
                f"`models` must be a run directory with a models/ folder. Received: "
                f"models={self.models!r}"
            )


PRESETS = {
    "default": {},
    "smoke": {
        "width": 4,
        "head_channels": 8,
        "cell_size": 8,
        "epochs": 1,
        "train_examples": 32,
        "test_examples": 16,
        "batch_size": 16,
        "eval_batch_size": 64,
        "location_grid_size": 3,
        "location_epochs": 1,
        "location_train_examples": 32,
        "location_test_examples": 8,
        "rank_examples": 16,
        "fractions": (0.0, 0.5),
        "table_fractions": (0.5,),
        "figure_fraction": 0.5,
        "random_draws": 2,
        "verbose": "0",
        "out": "runs/attack-smoke",
    },
    "paper": {  # DeepLabv3-style ResNet-50 (output stride 8) on Cityscapes; CIFAR-10 grids
        "dataset": "cityscapes",
        "padding_modes": ("zero", "reflect", "replicate", "circular"),
        "backbone": "resnet50",
        "stem": "imagenet",
        "width": 64,
        "head_channels": 256,
        "epochs": 60,
        "batch_size": 8,
        "eval_batch_size": 4,
        "train_examples": 2975,
        "test_examples": 500,
        "segmentation_learning_rate": 1e-4,
        "location_dataset": "cifar10",
        "location_epochs": 20,
        "location_test_examples": 1000,
        "rank_examples": 500,
        "random_draws": 5,
        "precision": "auto",
        "out": "runs/attack-paper",
    },
}


@dataclasses.dataclass(frozen=True)
class Combination:
    padding_mode: str
    task: str

    @property
    def name(self):
        return f"{self.padding_mode}-{self.task}"


class Attack(Experiment):
    name = "attack"
    config_class = AttackConfig
    presets = PRESETS
    description = __doc__.splitlines()[0]
    prog = "python -m trainers.attack"

    def combinations(self, config):
        from trainers import attack_data

        if config.models is not None:
            attack_data.check_channelwise_run(config)
        return [Combination(m, t) for m in config.padding_modes for t in config.tasks]

    def input_shape(self, config, combination):
        from tfposenc.data import info

        if combination.task == "location":
            meta = info(config.location_dataset)
            size = (config.location_cell_size or meta.image_size[0]) * config.location_grid_size
            return (size, size, 3)
        if config.dataset == "cityscapes":
            return (*config.image_size, 3)
        return (config.cell_size * config.grid_size,) * 2 + (3,)

    def build_model(self, config, combination):
        import keras

        from tfposenc.data import info
        from tfposenc.models import GAPNet, Segmenter, build_backbone
        from trainers import attack_data

        path = attack_data.saved_model_path(config, combination)
        if path is not None:
            return keras.saving.load_model(path, compile=False)

        options = dict(
            stem=config.stem,
            width=config.width,
            padding_mode=combination.padding_mode,
            input_shape=self.input_shape(config, combination),
        )
        if combination.task == "location":
            meta = info(config.location_dataset)
            backbone = build_backbone(config.backbone, **options)
            return GAPNet(backbone, config.location_grid_size**2, mean=meta.mean, std=meta.std)
        backbone = build_backbone(config.backbone, output_stride=config.output_stride, **options)
        mean, std = attack_data.segmentation_stats(config)
        classes = attack_data.segmentation_classes(config)[0]
        return Segmenter(backbone, classes, config.head_channels, mean=mean, std=std)

    def data(self, config, combination):
        from trainers import attack_data

        make = getattr(attack_data, f"{combination.task}_data")
        train, steps, test, ranking, samples = make(config)
        extra = {"ranking": ranking, "samples": samples}
        return Data(train, steps, None, test, extra=extra)

    def epochs(self, config, combination):
        from trainers import attack_data

        if attack_data.saved_model_path(config, combination) is not None:
            return 0  # loaded: evaluated as it is
        return config.location_epochs if combination.task == "location" else config.epochs

    def compile(self, config, combination, model):
        import keras

        from trainers.attack_data import segmentation_classes

        if combination.task == "location":
            return super().compile(config, combination, model)
        model.compile(
            optimizer=keras.optimizers.Adam(config.segmentation_learning_rate, beta_1=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, ignore_class=segmentation_classes(config)[1]
            ),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            jit_compile=config.jit_compile,
        )

    def hparams(self, config, combination):
        return {
            **dataclasses.asdict(combination),
            "backbone": config.backbone,
            "width": config.width,
        }

    def callbacks(self, config, combination, data, log_dir):
        # A loaded model trains for 0 epochs; the runner still reads the metrics file.
        open(os.path.join(config.out, "metrics.jsonl"), "a").close()
        return []

    def evaluate(self, config, combination, model, data):
        from trainers import attack_data
        from trainers.attack_report import attack

        yield "source", attack_data.saved_model_path(config, combination) or "trained"
        yield from attack(config, combination, model, data, self.input_shape(config, combination))

    def report(self, config, results, run_dir):
        from trainers.attack_report import report

        self.run_dir = run_dir
        return report(config, results, run_dir)

    def main(self, argv=None):
        """The command line; then adds the `sweep` and `artifacts` lists to results.json."""
        from trainers import cli

        code = cli.main(self, argv)
        if code == 0:
            from trainers.attack_report import finish_results

            finish_results(self.run_dir)
        return code


EXPERIMENT = Attack()


def run(config):
    """Runs (or resumes) the attack for `config`, like the command line; returns results."""
    from trainers import runner
    from trainers.attack_report import finish_results

    results = runner.run(EXPERIMENT, config)
    finish_results(config.out)
    return results


def main(argv=None):
    """`python -m trainers.attack` and the `tfposenc-attack` console script."""
    return EXPERIMENT.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
