"""The position attack's config, presets and combinations (no TensorFlow)."""

import dataclasses
import os

from tfposenc.vocabulary import BACKBONES, DATASETS, PADDING_MODES, RANKING_METHODS, STEMS
from trainers.framework.config import TrainConfig, option, seeded_name
from trainers.framework.registry import Spec

# `location`: a pooled dense read-out (`Classifier`), which can only locate through the
# channels; `location_gapnet`: the paper's GAPNet, whose 3x3 head on a small final map
# reads position from its own padding (an extra row, not the attacked model).
TASKS = ("segmentation", "location", "location_gapnet")
LOCATION_NETWORKS = {"location": "classifier", "location_gapnet": "gapnet"}
FRACTIONS = (0.0, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95)


@dataclasses.dataclass
class AttackConfig(TrainConfig):
    """Every knob of the position attack, with its default."""

    dataset: str = option("digits", "segmentation source", choices=("digits", "cityscapes"))
    padding_modes: tuple[str, ...] = option(
        ("zero", "circular"), "border modes, one model per task each",
        choices=PADDING_MODES, aliases=("--paddings",),
    )  # fmt: skip
    tasks: tuple[str, ...] = option(TASKS[:2], "models attacked", choices=TASKS)
    models: str | None = option(None, "load models from this run directory (channel-wise)")
    backbone: str = option("resnet18", "backbone of both tasks", choices=BACKBONES)
    stem: str = option("paper", "ResNet stem", choices=STEMS)
    width: int = option(16, "ResNet first-stage width, 64 = paper")
    output_stride: int = option(8, "segmenter backbone's output stride (8 or 16, dilated)")
    head_channels: int = option(32, "channels of the segmenter's 3x3 head conv")
    grid_size: int = option(5, "digits per side of a segmentation canvas")
    cell_size: int = option(16, "segmentation cell size (digits are resized to it)")
    flip: bool = option(True, "train both models with random horizontal flips (as DeepLab)")
    image_size: tuple[int, ...] = option((512, 1024), "Cityscapes height width after resizing")
    epochs: int = option(8, "segmenter training epochs")
    train_examples: int = option(640, "segmentation canvases (images) per epoch")
    test_examples: int = option(160, "segmentation canvases (images) evaluated")
    segmentation_learning_rate: float = option(4e-3, "segmenter Adam learning rate", minimum=0.0)
    location_dataset: str = option("digits", "location source", choices=DATASETS[:3])
    location_grid_size: int = option(5, "location grid size k")
    location_cell_size: int | None = option(None, "location cell size (None: the images')")
    location_epochs: int = option(6, "location training epochs")
    location_train_examples: int | None = option(None, "location canvases per epoch")
    location_test_examples: int = option(40, "test images, each placed in every cell")
    ranking: tuple[str, ...] = option(
        ("flip_2d", "magnitude"),
        "channel rankings; the first is `ranked`, the others controls (flip_2d: left-right "
        "and up-down flips, so channels that code the row are ranked too)",
        choices=RANKING_METHODS,
    )  # fmt: skip
    rank_examples: int = option(600, "training canvases the channels are ranked on")
    fractions: tuple[float, ...] = option(FRACTIONS, "fractions of the channels removed")
    random_draws: int = option(5, "random channel sets per fraction", minimum=2)
    claim_draws: int = option(
        19, "random draws at the claim fractions (a test against random needs 19+)", minimum=2
    )
    claim_fractions: tuple[float, ...] = option(
        (0.2, 0.8), "fractions removed where the claims are judged (each on its own)"
    )
    skill_margin: float = option(
        0.1, "claims need the unablated model this far above chance (0..1)", minimum=0.0
    )
    table_fractions: tuple[float, ...] = option((0.05, 0.2, 0.8), "fractions in results.md")
    figure_fraction: float = option(0.2, "fraction removed in the qualitative figure", minimum=0.0)
    figure_examples: int = option(3, "canvases in the qualitative figure")
    constant_value: float = option(128.0, "pixel value of the constant artifact input", minimum=0.0)
    artifact_inputs: int = option(128, "random-noise inputs of the border artifacts", minimum=2)
    architecture_padding_modes: tuple[str, ...] = option(
        PADDING_MODES, "padding modes of the untrained backbones' border artifacts (both tasks)",
        choices=PADDING_MODES,
    )  # fmt: skip
    export: bool = option(False, "export a SavedModel per combination")
    out: str = option("runs/attack", "run directory (resumed when it exists)")

    def validate(self):
        super().validate()
        for name in ("fractions", "table_fractions"):
            if any(not 0 <= f <= 1 for f in getattr(self, name)):
                raise ValueError(
                    f"`{name}` must be in [0, 1]. Received: {name}={getattr(self, name)!r}"
                )
        if not self.ranking or len(set(self.ranking)) != len(self.ranking):
            raise ValueError(
                f"`ranking` must name distinct methods. Received: ranking={self.ranking!r}"
            )
        if not self.claim_fractions or any(not 0 < f <= 1 for f in self.claim_fractions):
            raise ValueError(
                "`claim_fractions` must be in (0, 1]. Received: "
                f"claim_fractions={self.claim_fractions!r}"
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
        "grid_size": 3,
        "fractions": (0.0, 0.5),
        "table_fractions": (0.5,),
        "figure_fraction": 0.5,
        "claim_fractions": (0.5,),
        "random_draws": 2,
        "claim_draws": 2,  # too few for a test against random: its claims are inconclusive
        "artifact_inputs": 8,
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
        "ranking": ("flip", "magnitude"),  # Cityscapes is no grid: the authors' flip ranking
        "precision": "auto",
        "out": "runs/attack-paper",
    },
}


@dataclasses.dataclass(frozen=True)
class Combination:
    """One attacked model: its padding mode, task and seed (its data, ranking canvases,
    random draws and initial weights)."""

    padding_mode: str
    task: str
    seed: int = 0

    @property
    def group(self):
        """The name shared by every seed of this combination."""
        return f"{self.padding_mode}-{self.task}"

    @property
    def name(self):
        return seeded_name(self.group, self.seed)


__all__ = ["FRACTIONS", "LOCATION_NETWORKS", "PRESETS", "TASKS", "AttackConfig", "Combination"]

# What the command line needs (`trainers.framework.cli.main` parses with it, then imports
# the experiment): importing this module does not import TensorFlow.
SPEC = Spec(
    name="attack",
    config_class=AttackConfig,
    presets=PRESETS,
    description=(
        "The position attack: rank the position-encoding channels, remove them, measure by region."
    ),
    prog="python -m trainers.attack",
    experiment="trainers.attack.experiment:EXPERIMENT",
)
