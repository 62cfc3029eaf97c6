"""The shift-invariance experiment, the paper's Table 2: AugShift vs BlurPool vs APS.

Every method trains a ResNet-18 (cifar stem, `--width`) classifier on raw pixels (the
model normalises inside) and is measured on the test split: top-1 (%), Cons.8 and
Cons.16 (the crop protocol of `trainers.shift_evaluation`: pad 8 black pixels, two
windows at offsets in [0, m) around the centre, top-1 agreement, `--passes` passes),
circular-shift consistency (two `np.roll`s by any amount) and Cons.m for m = 1..16 (the
curve, `consistency_vs_shift_<dataset>.png`; m = 1 compares an image with itself). The rows:

- `baseline`: strided convs, zero padding, no shifted views.
- `shift_aug`: AugShift's two shifted views (symmetric, offsets in `[-m, m]` with
  `m = --train-max-shift`, zero fill) with cross-entropy on both and weight 0: the
  augmentation alone. `augshift`: the same views plus `--consistency-weight` times the
  MSE of the pooled latents (logged with `cross_entropy` and `latent_norm` in TensorBoard).
- `blurpool` (Zhang 2019, blur padding `--blur-padding-mode`), `blurpool_augshift`.
- `aps`: adaptive polyphase sampling with circular padding (Chaman & Dokmanic 2021):
  exactly invariant to circular shifts.

`--seeds 0 1 2` trains every method once per seed; the table gives mean +/- std.

Commands and cost (measured on the 2-core CPU machine this project is developed on):

    python -m trainers.shift_invariance --preset smoke  # 37 s (load average 3)
    python -m trainers.shift_invariance                 # digits at 32x32, width 16
    python -m trainers.shift_invariance --preset paper  # CIFAR-10 and CIFAR-100 (tfds)

The default run took 10.6 CPU-minutes: 27 min of wall time while other jobs kept the load
average at 7-12 (so about 6-8 min on 2 idle cores; not measured idle). The paper preset is the usual CIFAR
recipe for every row: SGD 0.1, momentum 0.9, weight decay 5e-4, cosine over 200 epochs,
batch 128, random crop after a 4-px black pad, horizontal flip; 5,000 training images
are held out for validation; to choose the AugShift weight on them, run `--methods
augshift --consistency-weight W --test-on-holdout` for a few W (every column is then
measured on the held-out images) and keep the best trade-off.
Expected cost on one A100-class GPU (an estimate, not measured: ~5k img/s for a plain
ResNet-18 at 32x32 in TensorFlow): ~30 min per plain row; AugShift rows (two views) and
BlurPool / APS rows (stride-1 convs before each downsampling) cost about 2x, BlurPool +
AugShift about 4x: ~6 h per dataset for the 6 rows, ~12 h for both. A killed run
resumes when started again with the same command.
"""

import dataclasses

from trainers import vocabulary
from trainers.config import TrainConfig, option
from trainers.experiment import Data, Experiment

METHODS = ("baseline", "shift_aug", "augshift", "blurpool", "blurpool_augshift", "aps")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "constant")
BLUR_PADDING_MODES = ("zero", "reflect", "replicate", "circular")  # tfposenc's PADDING_MODES


@dataclasses.dataclass
class ShiftInvarianceConfig(TrainConfig):
    """Every knob of the shift-invariance experiment, with its default."""

    dataset: tuple[str, ...] = option(
        ("digits",), "image sources, one table each", choices=vocabulary.DATASETS[:3]
    )
    methods: tuple[str, ...] = option(METHODS, "rows of the table", choices=METHODS)
    seeds: tuple[int, ...] = option(
        (), "training seeds, every method once each (mean +/- std); () means --seed", minimum=0
    )
    width: int = option(16, "ResNet-18 (cifar stem) first-stage width, 64 = paper")
    image_size: int = option(32, "images are resized to this size (digits: 8 -> 32)")
    epochs: int = option(8, "training epochs of every method")
    optimizer: str = option("adam", "optimizer", choices=OPTIMIZERS)
    beta_1: float = option(0.9, "Adam beta_1 in [0, 1)", minimum=0.0)
    momentum: float = option(0.9, "SGD momentum", minimum=0.0)
    weight_decay: float = option(0.0, "weight decay (Keras' decoupled w -= lr*wd*w)", minimum=0.0)
    schedule: str = option("cosine", "learning-rate schedule over all steps", choices=SCHEDULES)
    crop_pad: int = option(0, "train on random crops after this black pad (0: none)", minimum=0)
    flip: bool = option(False, "random horizontal flip in training")
    train_max_shift: int = option(4, "AugShift views: symmetric offsets in [-m, m], zero fill")
    consistency_weight: float = option(1.0, "weight of AugShift's latent MSE", minimum=0.0)
    blur_padding_mode: str = option(
        "reflect", "BlurPool border mode (Zhang's: reflect)", choices=BLUR_PADDING_MODES
    )
    passes: int = option(5, "test passes for Cons.8, Cons.16 and circular consistency")
    curve_passes: int = option(1, "test passes of the other points of the curve")
    holdout_examples: int = option(0, "train images held out to validate (0: test)", minimum=0)
    test_on_holdout: bool = option(False, "measure on the held-out images, not the test split")
    train_examples: int | None = option(None, "training images per epoch (None: the split)")
    test_examples: int | None = option(None, "test images used (None: all)")
    out: str = option("runs/shift-invariance", "run directory (resumed when it exists)")

    def validate(self):
        super().validate()
        for name in ("dataset", "methods", "seeds"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"`{name}` must not repeat a value. Received: {name}={values!r}")
        if self.test_on_holdout and not self.holdout_examples:
            raise ValueError("`test_on_holdout` needs `holdout_examples` > 0. Received: 0")
        if self.image_size < 8 * 2 or self.image_size % 8:
            raise ValueError(
                "`image_size` must be a multiple of 8 (the cifar stem's stride, even down to "
                f"the last APS) and >= 16. Received: image_size={self.image_size}"
            )


PRESETS = {
    "default": {},
    "smoke": {
        "methods": ("baseline", "augshift", "aps"),
        "width": 4,
        "image_size": 16,
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
        "width": 64,
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
    def name(self):
        return f"{self.dataset}-{self.method}-seed{self.seed}"


def steps_per_epoch(config, dataset):
    from tfposenc.data import info

    examples = config.train_examples or info(dataset).splits["train"] - config.holdout_examples
    return -(-examples // config.batch_size)


class ShiftInvariance(Experiment):
    name = "shift_invariance"
    config_class = ShiftInvarianceConfig
    presets = PRESETS
    description = __doc__.splitlines()[0]
    prog = "python -m trainers.shift_invariance"

    def combinations(self, config):
        seeds = config.seeds or (config.seed,)
        return [Combination(d, m, s) for d in config.dataset for m in config.methods for s in seeds]

    def input_shape(self, config, combination):
        return (config.image_size, config.image_size, 3)

    def build_model(self, config, combination):
        import keras

        from tfposenc.data import info
        from tfposenc.models import Classifier, ResNetBackbone
        from trainers.shift_evaluation import AugShiftTrainer

        keras.utils.set_random_seed(combination.seed)
        method, meta = combination.method, info(combination.dataset)
        downsampling = {"blurpool": "blur", "blurpool_augshift": "blur", "aps": "aps"}
        backbone = ResNetBackbone(
            18,
            stem="cifar",
            width=config.width,
            padding_mode="circular" if method == "aps" else "zero",
            downsampling=downsampling.get(method, "stride"),
            blur_padding_mode=config.blur_padding_mode,
            input_shape=self.input_shape(config, combination),
        )
        classifier = Classifier(backbone, meta.num_classes, mean=meta.mean, std=meta.std)
        if method not in ("shift_aug", "augshift", "blurpool_augshift"):
            return classifier
        return AugShiftTrainer(
            classifier,
            max_shift=config.train_max_shift,
            consistency_weight=0.0 if method == "shift_aug" else config.consistency_weight,
            seed=combination.seed,
        )

    def check_model(self, config, combination, model):
        """Also checks that the combination's dataset is prepared: the preflight makes
        only the first combination's data, and a second dataset must fail early too."""
        from tfposenc.data import load

        super().check_model(config, combination, model)
        load(combination.dataset, "test", config.data_dir)

    def data(self, config, combination):
        """Train (resized pixels, optional crop/flip), validation (holdout or test), test."""
        import keras
        import tensorflow as tf

        from tfposenc.data import load

        keras.utils.set_random_seed(combination.seed)  # the runner seeded config.seed
        size, pad, seed = config.image_size, config.crop_pad, combination.seed

        def resized(split):
            def resize(image, label):
                image = tf.image.resize(tf.cast(image, tf.float32), (size, size))
                return tf.clip_by_value(tf.round(image), 0.0, 255.0), label

            source = load(combination.dataset, split, config.data_dir)
            return source.map(resize, num_parallel_calls=tf.data.AUTOTUNE)

        def augment(image, label):
            if pad:
                image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
                image = tf.image.random_crop(image, (size, size, 3))
            if config.flip:
                image = tf.image.random_flip_left_right(image)
            return image, label

        train_split = resized("train")
        held = train_split.take(config.holdout_examples)
        train = train_split.skip(config.holdout_examples).cache().shuffle(4096, seed=seed)
        train = train.repeat().map(augment, num_parallel_calls=tf.data.AUTOTUNE)
        train = train.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
        test = held if config.test_on_holdout else resized("test")
        test = test.take(config.test_examples or -1).cache().batch(config.eval_batch_size)
        validation = held.batch(config.eval_batch_size).cache() if config.holdout_examples else test
        return Data(train, steps_per_epoch(config, combination.dataset), validation, test)

    def compile(self, config, combination, model):
        import keras

        learning_rate = config.learning_rate
        if config.schedule == "cosine":
            steps = config.epochs * steps_per_epoch(config, combination.dataset)
            learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
        decay = config.weight_decay or None
        if config.optimizer == "sgd":
            optimizer = keras.optimizers.SGD(
                learning_rate, momentum=config.momentum, weight_decay=decay
            )
        else:
            optimizer = keras.optimizers.Adam(
                learning_rate, config.beta_1, config.beta_2, weight_decay=decay
            )
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            jit_compile=config.jit_compile,
        )

    def hparams(self, config, combination):
        keys = ("width", "consistency_weight", "train_max_shift", "optimizer", "crop_pad")
        return {**dataclasses.asdict(combination), **{k: getattr(config, k) for k in keys}}

    def callbacks(self, config, combination, data, log_dir):
        from trainers.shift_evaluation import StepTimer

        data.extra["timer"] = StepTimer()
        return [data.extra["timer"]]

    def evaluate(self, config, combination, model, data):
        from trainers import shift_evaluation

        yield from shift_evaluation.evaluate(self, config, combination, model, data)

    def report(self, config, results, run_dir):
        from trainers import shift_evaluation

        return shift_evaluation.section(config, results, run_dir)


EXPERIMENT = ShiftInvariance()


def main(argv=None):
    """`python -m trainers.shift_invariance` and the `tfposenc-shift-invariance` script."""
    return EXPERIMENT.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
