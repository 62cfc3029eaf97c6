"""The shift-invariance experiment's config, presets and combinations (no TensorFlow)."""

import dataclasses

from tfposenc.vocabulary import DATASETS, PADDING_MODES
from trainers.framework.config import TrainConfig, option, seeded_name, seeds_option
from trainers.framework.registry import Spec

METHODS = ("baseline", "shift_aug", "augshift", "blurpool", "blurpool_augshift", "aps")
OPTIMIZERS = ("adam", "sgd")
# Sources cut in windows (`shift_mode="crop"`) and their image size (px).
CROP_SOURCES = {"textured_glyphs": 48}
SCHEDULES = ("cosine", "constant")


@dataclasses.dataclass
class ShiftInvarianceConfig(TrainConfig):
    """Every knob of the shift-invariance experiment, with its default."""

    dataset: tuple[str, ...] = option(
        ("digits",), "image sources, one table each", choices=(*DATASETS[:3], *DATASETS[4:])
    )
    methods: tuple[str, ...] = option(METHODS, "rows of the table", choices=METHODS)
    # Three seeds by default (paired intervals over them); `--seed`: the evaluation views.
    seeds: tuple[int, ...] = seeds_option((0, 1, 2))
    width: int = option(16, "ResNet-18 (cifar stem) first-stage width, 64 = paper")
    image_size: int = option(16, "the network's input size (glyphs: 32, as CIFAR)")
    content_size: int | None = option(
        8,
        "resize images to this and centre them on a black image_size canvas (None: fill it; "
        "not used by textured_glyphs, cut in windows)",
    )
    epochs: int = option(8, "training epochs of every method")
    optimizer: str = option("adam", "optimizer", choices=OPTIMIZERS)
    beta_1: float = option(0.9, "Adam beta_1 in [0, 1)", minimum=0.0)
    momentum: float = option(0.9, "SGD momentum", minimum=0.0)
    weight_decay: float = option(0.0, "weight decay (Keras' decoupled w -= lr*wd*w)", minimum=0.0)
    schedule: str = option("cosine", "learning-rate schedule over all steps", choices=SCHEDULES)
    crop_pad: int = option(
        4, "every row trains on random crops: offsets in [-crop_pad, crop_pad]", minimum=1
    )
    flip: bool = option(False, "random horizontal flip in training")
    consistency_weight: float = option(1.0, "weight of AugShift's latent MSE", minimum=0.0)
    blur_padding_mode: str = option(
        "reflect", "BlurPool border mode (Zhang's: reflect)", choices=PADDING_MODES
    )
    passes: int = option(3, "test passes for Cons.8, Cons.16 and circular consistency")
    curve_passes: int = option(1, "test passes of the other points of the curve")
    holdout_examples: int = option(0, "train images held out to validate (0: test)", minimum=0)
    test_on_holdout: bool = option(False, "measure on the held-out images, not the test split")
    train_examples: int | None = option(None, "training images per epoch (None: the split)")
    test_examples: int | None = option(None, "test images used (None: all)")
    out: str = option("runs/shift-invariance", "run directory (resumed when it exists)")

    def validate(self):
        super().validate()
        for name in ("dataset", "methods"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"`{name}` must not repeat a value. Received: {name}={values!r}")
        if self.test_on_holdout and not self.holdout_examples:
            raise ValueError("`test_on_holdout` needs `holdout_examples` > 0. Received: 0")
        if self.content_size is not None and not 0 < self.content_size <= self.image_size:
            raise ValueError(
                f"`content_size` must be in [1, image_size={self.image_size}] or None. "
                f"Received: content_size={self.content_size}"
            )
        for dataset in self.dataset:
            need = self.image_size + max(2 * self.crop_pad, 15)  # Cons.16: offsets 0..15
            if dataset in CROP_SOURCES and need > CROP_SOURCES[dataset]:
                raise ValueError(
                    f"`image_size` + max(2 * crop_pad, 15) must be <= {CROP_SOURCES[dataset]} "
                    f"(the size of {dataset}'s images, cut in windows). Received: "
                    f"image_size={self.image_size}, crop_pad={self.crop_pad}"
                )
        if self.image_size < 8 * 2 or self.image_size % 8:
            raise ValueError(
                "`image_size` must be a multiple of 8 (the cifar stem's stride, even down to "
                f"the last APS) and >= 16. Received: image_size={self.image_size}"
            )


PRESETS = {
    # Native 8-px digits on a 16-px canvas (a 4-px margin: APS stays exact on Cons.8),
    # 3 seeds: sized to ~13 CPU-min (README); no SavedModel exports (--export adds them).
    "default": {"export": False},
    "smoke": {
        "dataset": ("digits",),
        "seeds": (0,),
        "methods": ("baseline", "augshift", "aps"),
        "width": 4,
        "image_size": 16,
        "content_size": 8,
        "epochs": 1,
        "batch_size": 16,
        "train_examples": 48,
        "test_examples": 32,
        "passes": 1,
        "verbose": "0",
        "out": "runs/shift-invariance-smoke",
    },
    "paper": {
        "dataset": ("cifar10", "cifar100"),
        "seeds": (0,),  # one seed per row (200 epochs each): --seeds 0 1 2 to pair over seeds
        "width": 64,
        "image_size": 32,
        "content_size": None,
        "epochs": 200,
        "batch_size": 128,
        "optimizer": "sgd",
        "learning_rate": 0.1,
        "weight_decay": 5e-4,
        "crop_pad": 4,
        "flip": True,
        "holdout_examples": 5000,
        "curve_passes": 5,
        "precision": "auto",
        "out": "runs/shift-invariance-paper",
    },
}


@dataclasses.dataclass(frozen=True)
class Combination:
    dataset: str
    method: str
    seed: int

    @property
    def group(self):
        """The name shared by every seed of this row: `<dataset>-<method>`."""
        return f"{self.dataset}-{self.method}"

    @property
    def name(self):
        return seeded_name(self.group, self.seed)


__all__ = [
    "CROP_SOURCES",
    "METHODS",
    "OPTIMIZERS",
    "PRESETS",
    "SCHEDULES",
    "Combination",
    "ShiftInvarianceConfig",
]

# What the command line needs (`trainers.framework.cli.main` parses with it, then imports
# the experiment): importing this module does not import TensorFlow.
SPEC = Spec(
    name="shift_invariance",
    config_class=ShiftInvarianceConfig,
    presets=PRESETS,
    description=(
        "The shift-invariance experiment, the paper's Table 2: AugShift vs BlurPool vs APS."
    ),
    prog="python -m trainers.shift_invariance",
    experiment="trainers.shift_invariance.experiment:EXPERIMENT",
)
