"""The channel-wise experiment's config, presets and combinations (no TensorFlow).

The default budget. GAPNet and the classifier reach 100% location at k = 3 in one
epoch of 60 steps (2,880 canvases, batch 48). PermuteNet learns the image class slowly
whatever the setting; calibrated at k = 3 (8-px cells, validation accuracy after N
steps, one seed, this 2-core machine under load): width 16, Adam 3e-3, beta_1 0.9:
30% / 600 (the default run), 29% / 1,500 with cosine decay, 32.5% / 1,500 with
beta_1 0.99; width 32: 37% / 1,500 (3e-3), 27% / 1,000 (1e-2); batch 16, 1e-3: 32% /
3,000; the issue measured 37% / 1,800 and 45% / 4,500 (width 16, 3e-3, 0.9). No setting
reached 50% within the 10-minute default, so PermuteNet gets what fits (`order_free_*`)
and the report shows its learning curves.
"""

import dataclasses

from tfposenc.vocabulary import BACKBONES, CONV_PADDING_MODES, DATASETS, PLACEMENTS, STEMS
from trainers.framework.config import TrainConfig, option

NETWORKS = ("gapnet", "gapnet1x1", "classifier", "permutenet", "sortnet")
ORDER_FREE = ("permutenet", "sortnet")
# What each network's row isolates (written to results.md).
ISOLATES = {
    "gapnet": "the paper's GAPNet: 3x3 head conv over the last map, pooled; no dense. Its "
    "head sees its own zero padding, so on a small map it can read position by itself",
    "gapnet1x1": "GAPNet with a 1x1 head: the same function as `classifier` (a 1x1 conv "
    "commutes with average pooling)",
    "classifier": "pooling and dense, no shuffle: position only from the pooled channels. "
    "The control of GAPNet's head and the exact control of PermuteNet (only the shuffle differs)",
    "permutenet": "the classifier with the pooled channels shuffled on every call (test too): "
    "channel order destroyed",
    "sortnet": "the classifier with the pooled channels sorted: order destroyed, the multiset "
    "of values kept (beyond the paper)",
}
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

    dataset: str = option("digits", "image source", choices=DATASETS[:3])
    grid_sizes: tuple[int, ...] = option((3, 5, 7), "grid sizes k (k x k cells per canvas)")
    padding_modes: tuple[str, ...] = option(
        ("zero",),
        "border mode of every padded conv, one run each",
        choices=CONV_PADDING_MODES,
        aliases=("--paddings",),
    )
    networks: tuple[str, ...] = option(
        ("gapnet", "classifier", "permutenet"), "networks", choices=NETWORKS
    )
    tasks: tuple[str, ...] = option(TASKS, "targets: the cell or the image class", choices=TASKS)
    seeds: tuple[int, ...] = option(
        (), "run every combination once per seed, report mean +/- std (): --seed)", minimum=0
    )
    epochs: int = option(1, "epochs of GAPNet, the classifier and the border rows")
    order_free_epochs: int = option(10, "epochs of PermuteNet and SortNet")
    order_free_learning_rate: float | None = option(
        3e-3, "Adam learning rate of PermuteNet and SortNet (None: --learning-rate)", minimum=0.0
    )
    order_free_beta_1: float | None = option(
        0.9, "Adam beta_1 of PermuteNet and SortNet (None: --beta-1)", minimum=0.0
    )
    border_grid_size: int | None = option(
        None, "grid size of the border rows (GAPNet location: circular, + blur, + APS); None: none"
    )
    backbone: str = option("resnet18", "backbone", choices=BACKBONES)
    stem: str = option("paper", "ResNet stem", choices=STEMS)
    width: int = option(16, "ResNet first-stage width, 64 = paper (NiN: 12 x this)")
    cell_size: int | None = option(None, "resize images to this cell size (None: theirs)")
    flip: bool = option(False, "random horizontal flip in training")
    train_examples: int | None = option(2880, "canvases per epoch (None: the train split)")
    test_examples: int | None = option(180, "test images used (None: all)")
    eval_placement: str = option(
        "random", "test placements: k^2 random passes or every cell", choices=PLACEMENTS
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
        return self.seeds or (self.seed,)


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
        "train_examples": None,
        "test_examples": None,
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


__all__ = [
    "BORDER_ROWS",
    "NETWORKS",
    "ORDER_FREE",
    "PRESETS",
    "TASKS",
    "ChannelwiseConfig",
    "Combination",
]
