"""The channel-wise experiment's config, presets and combinations (no TensorFlow).

Matched budgets. Within a grid size and task every network trains with the same
optimizer, learning rate, batch and number of steps (`--epochs` of `--train-examples`
canvases, Adam `--learning-rate`, `--beta-1`), so the classifier is the exact control of
PermuteNet and SumNet: only the head differs. `--order-free-epochs`,
`--order-free-learning-rate` and `--order-free-beta-1` give PermuteNet, SortNet and SumNet
a budget of their own; `results.md` then says the rows are not matched.

The default budget: 3 epochs of 60 steps (batch 48), Adam 3e-3, beta_1 0.9, for all
24 runs: the old default's total number of steps (60 + 60 + 600 per grid size and
task) shared equally by four networks, sized for 10 minutes on 2 idle cores (not
re-measured idle: README.md's table of commands gives 7 min 45 s). PermuteNet learns the
image class slowly whatever the setting (k = 3, width 16, 3e-3, 0.9: 27% / 600 steps,
37% / 1,800, 45% / 4,500, still rising; batch 16 at 1e-3: 32% / 3,000; width 32: 37% /
1,500), so at 180 steps it is under-trained and the claims say so. The classifier
reaches 100% location at k = 3 within 60 steps at 3e-3 / 0.9 (and at 1e-3 / 0.5).

`--preset long`: k = 3 only (9 cells against 10 classes: the label-fair grid), seeds
0, 1, 2, classifier / PermuteNet / SumNet on location and class, the default's optimizer
and batch for all (matched), each run trained until its validation curve is flat
(`--stop-when-flat 1.0`: the 95% interval of the slope of accuracy against log2(step)
over the last 40% of the steps within +-1 point per doubling; `curves.flatness`) or the
cap of 50 epochs = 3,000 steps. The cap is what fits 60 minutes on 2 cores: a first
try with a cap of 6,000 (2026-12-07, 73 ms per step at load 7-10) saw the classifier's
location run flat at once (42 s) but its class run still not flat after 89 epochs
(validation 92-93%: with 180 validation images its epoch-to-epoch noise of about 1 point
needs some 200 epochs before the slope's interval over the last 40% of the steps, only
0.74 doublings, fits inside +-1), so 16 of the 18 runs reach the cap: 6,000 steps would
have taken about 2 h. The rule is kept (a noisy curve is not called flat); the report
gives each run's slope and interval at its end, so a run that stops at the cap says how
far from flat it is. README.md gives the measured wall time.
"""

import dataclasses

from tfposenc.vocabulary import (
    BACKBONES,
    CONV_PADDING_MODES,
    DATASETS,
    PLACEMENTS,
    READOUT_INITS,
    STEMS,
    TARGETS,
)
from trainers.framework.config import TrainConfig, option, seeded_name
from trainers.framework.registry import Spec

NETWORKS = ("gapnet", "gapnet1x1", "classifier", "permutenet", "sortnet", "sumnet")
# Networks whose read-out cannot see the channel order (their own budget with `order_free_*`).
ORDER_FREE = ("permutenet", "sortnet", "sumnet")
# Networks with a random shuffle at test time: scored under `permutations` permutations.
SHUFFLED = ("permutenet",)
# Networks with a dense read-out over the pooled vector (initialised by `readout_init`).
READOUT = ("classifier", "permutenet", "sortnet", "sumnet")
# What each network's row isolates (written to results.md).
ISOLATES = {
    "gapnet": "the paper's GAPNet: 3x3 head conv over the last map, pooled; no dense. Its "
    "head sees its own zero padding, so on a small map it can read position by itself",
    "gapnet1x1": "GAPNet with a 1x1 head: the same function as `classifier` (a 1x1 conv "
    "commutes with average pooling)",
    "classifier": "pooling and dense, no shuffle: position only from the pooled channels. "
    "The control of GAPNet's head and of PermuteNet (only the shuffle differs when the "
    "budgets are matched)",
    "permutenet": "the classifier with the pooled channels shuffled on every call (test too): "
    "channel order destroyed",
    "sortnet": "the classifier with the pooled channels sorted: order destroyed, the multiset "
    "of values kept (beyond the paper; its dense layer sees every order statistic, so it is "
    "not the noise-free PermuteNet)",
    "sumnet": "a dense layer on the channel sum of the pooled vector: the noise-free "
    "PermuteNet. Behind a uniform random permutation P, E[W P z] = (mean of each row of W) "
    "x sum(z): the only linear function of z that survives every permutation is its sum, "
    "so PermuteNet is a one-scalar classifier plus zero-mean noise from the spread of each "
    "weight row",
}
TASKS = TARGETS
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
        ("gapnet", "classifier", "permutenet", "sumnet"), "networks", choices=NETWORKS
    )
    tasks: tuple[str, ...] = option(TASKS, "targets: the cell or the image class", choices=TASKS)
    epochs: int = option(3, "epochs of every network (matched budgets)")
    learning_rate: float = option(3e-3, "Adam learning rate of every network (> 0)", minimum=0.0)
    beta_1: float = option(0.9, "Adam beta_1 of every network in [0, 1)", minimum=0.0)
    order_free_epochs: int | None = option(
        None, "epochs of PermuteNet, SortNet, SumNet (None: --epochs, matched)", minimum=1
    )
    order_free_learning_rate: float | None = option(
        None, "Adam learning rate of the order-free networks (None: --learning-rate)", minimum=0.0
    )
    order_free_beta_1: float | None = option(
        None, "Adam beta_1 of the order-free networks (None: --beta-1)", minimum=0.0
    )
    permutations: int = option(
        100, "distinct channel permutations per test pass of PermuteNet", minimum=1
    )
    readout_init: str = option(
        "torch",
        "dense read-out init: PyTorch's uniform +-1/sqrt(fan_in) (the authors') or Keras' Glorot",
        choices=READOUT_INITS,
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
    stop_when_flat: float | None = option(
        None,
        "stop a run once its validation curve is flat: the 95% interval of the slope of "
        "accuracy against log2(step) over the last 40% of the steps within +- this many "
        "points per doubling (None: train every epoch; `--epochs` is the cap)",
        minimum=0.0,
    )
    validation_examples: int = option(
        180, "training images held out for validation (learning curves, stopping)", minimum=1
    )
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
    def matched(self):
        """Whether every network trains with the same budget and optimizer."""
        return (
            self.order_free_epochs in (None, self.epochs)
            and self.order_free_learning_rate in (None, self.learning_rate)
            and self.order_free_beta_1 in (None, self.beta_1)
        )


PRESETS = {
    "default": {},
    "smoke": {
        "grid_sizes": (2,),
        "tasks": ("location",),
        "networks": ("classifier", "permutenet"),
        "border_grid_size": None,
        "width": 4,
        "epochs": 2,
        "permutations": 100,
        "train_examples": 96,
        "test_examples": 24,
        "validation_examples": 24,
        "batch_size": 24,
        "verbose": "0",
        "out": "runs/channelwise-smoke",
    },
    "long": {  # k = 3 (label-fair), 3 seeds, matched optimizer and batch, until flat
        "grid_sizes": (3,),
        "seeds": (0, 1, 2),
        "networks": ("classifier", "permutenet", "sumnet"),
        "tasks": TARGETS,
        "epochs": 50,  # the cap: 3,000 steps of batch 48 (see the docstring)
        "stop_when_flat": 1.0,
        "border_grid_size": None,
        "verbose": "2",
        "out": "runs/channelwise-long",
    },
    "paper": {
        "dataset": "cifar10",
        "padding_modes": ("zero", "reflect", "replicate"),
        "networks": ("gapnet", "classifier", "permutenet"),
        "width": 64,
        "epochs": 20,
        "learning_rate": 1e-3,
        "beta_1": 0.5,
        "batch_size": 48,
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
        return seeded_name(self.group, self.seed)


__all__ = [
    "BORDER_ROWS",
    "NETWORKS",
    "ORDER_FREE",
    "PRESETS",
    "READOUT",
    "SHUFFLED",
    "TASKS",
    "ChannelwiseConfig",
    "Combination",
]

# What the command line needs (`trainers.framework.cli.main` parses with it, then imports
# the experiment): importing this module does not import TensorFlow.
SPEC = Spec(
    name="channelwise",
    config_class=ChannelwiseConfig,
    presets=PRESETS,
    description=(
        "The channel-wise experiment, the paper's Table 1: is position encoded channel-wise?"
    ),
    prog="python -m trainers.channelwise",
    experiment="trainers.channelwise.experiment:EXPERIMENT",
)
