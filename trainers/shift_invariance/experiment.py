"""The shift-invariance experiment, the paper's Table 2: AugShift vs BlurPool vs APS.

Every method trains a ResNet-18 (cifar stem, `--width`) classifier on raw pixels (the
model normalises inside) on the same random crops (`tfposenc.data.training_crop`,
offsets in `[-crop_pad, crop_pad]`, `--crop-pad` 4 as in the poster; AugShift rows' two
views are two such crops of the uncropped image), so the table isolates what each
method adds. `--dataset` (`trainers.shift_invariance.data`): `digits` and `glyphs` are
resized to `--content-size` and centred on a black `--image-size` canvas: with a margin
at least the shift, a shift with black fill is a circular shift, so Cons.8 measures
translation alone and APS, exactly invariant to circular shifts, scores 100.0 on Cons.8
as on circular consistency (tested on `--dataset digits --content-size 16`);
`textured_glyphs` (48 px, 1/f noise) is cut in windows (`shift_mode="crop"`, no fill).
Every row is measured on the same test images (held in memory; `test_digest` in each
record) and the same views (`tfposenc.metrics.per_image_agreement`, evaluation seed
`--seed`): top-1 (%), Cons.8 and Cons.16 (the poster's Cons.m: two views whose offsets
differ by at most m - 1 pixels per axis; top-1 agreement, `--passes` passes),
circular-shift consistency (two `np.roll`s by any amount) and Cons.m for m = 1..16 (the
curve, `consistency_vs_shift_<dataset>.png`; m = 1 compares an image with itself). The rows:

- `baseline`: strided convs, zero padding, the crops only.
- `shift_aug`: AugShift's two views (two crops) with cross-entropy on both and weight 0:
  the augmentation alone, AugShift's control. `augshift`: the same views plus
  `--consistency-weight` times the MSE of the pooled latents (logged with
  `cross_entropy` and `latent_norm` in TensorBoard).
- `blurpool` (Zhang 2019, blur padding `--blur-padding-mode`), `blurpool_augshift`.
- `aps`: adaptive polyphase sampling with circular padding (Chaman & Dokmanic 2021):
  exactly invariant to circular shifts.

`--seeds` (0 1 2 by default) trains every row once per seed; `results.json` has one
record per row (means, `_std`, `_interval` and `seeds`, the per-seed records) and
`claims`: the poster's comparisons (AugShift against `shift_aug`, BlurPool and APS
against the baseline) as paired differences with intervals and verdicts
(`trainers.shift_invariance.claims`).

Commands and cost (measured on the 2-core CPU machine this project is developed on):

    python -m trainers.shift_invariance --preset smoke  # ~40 s on 2 idle cores
    python -m trainers.shift_invariance                 # the default: see README.md
    python -m trainers.shift_invariance --dataset digits --content-size 16 --image-size 32
    python -m trainers.shift_invariance --preset paper  # CIFAR-10 and CIFAR-100 (tfds)

The default run's setting and measured time are in README.md. The paper preset is the usual
CIFAR recipe for every row: SGD 0.1, momentum 0.9, weight decay 5e-4, cosine over 200 epochs,
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

import keras

from tfposenc.data import info
from tfposenc.models import AugShift, Classifier, ResNetBackbone
from trainers.framework.experiment import Budget, Experiment, Summary, steps_for
from trainers.shift_invariance.claims import aggregate, check
from trainers.shift_invariance.config import SPEC, Combination
from trainers.shift_invariance.data import pipelines, training_shift
from trainers.shift_invariance.evaluation import evaluate
from trainers.shift_invariance.report import section

AUGSHIFT_METHODS = ("shift_aug", "augshift", "blurpool_augshift")
DOWNSAMPLING = {"blurpool": "blur", "blurpool_augshift": "blur", "aps": "aps"}


class ShiftInvariance(Experiment, spec=SPEC):
    def combinations(self, config):
        seeds = config.seed_list
        return [Combination(d, m, s) for d in config.dataset for m in config.methods for s in seeds]

    def input_shape(self, config, combination):
        return (config.image_size, config.image_size, 3)

    def build_model(self, config, combination):
        method, meta = combination.method, info(combination.dataset)
        backbone = ResNetBackbone(
            18,
            stem="cifar",
            width=config.width,
            padding_mode="circular" if method == "aps" else "zero",
            downsampling=DOWNSAMPLING.get(method, "stride"),
            blur_padding_mode=config.blur_padding_mode,
            input_shape=self.input_shape(config, combination),
        )
        classifier = Classifier(backbone, meta.num_classes, mean=meta.mean, std=meta.std)
        if method not in AUGSHIFT_METHODS:
            return classifier
        max_shift, shift_mode, crop_size = training_shift(config, combination.dataset)
        return AugShift(  # its two views are two of the pipeline's crops of one image
            classifier,
            max_shift=max_shift,
            consistency_weight=0.0 if method == "shift_aug" else config.consistency_weight,
            shift_mode=shift_mode,
            seed=combination.seed,
            crop_size=crop_size,
        )

    def data(self, config, combination):
        """The row's pipelines; an AugShift row's model is built to check that its views
        are the other rows' crops (`tfposenc.data.training_crop` refuses a mismatch)."""
        model = None
        if combination.method in AUGSHIFT_METHODS:
            model = self.build_model(config, combination)
        return pipelines(config, combination, model)

    def budget(self, config, combination):
        examples = config.train_examples
        examples = examples or info(combination.dataset).splits["train"] - config.holdout_examples
        return Budget(config.epochs, steps_for(examples, config.batch_size))

    def optimizer(self, config, combination, budget):
        learning_rate = config.learning_rate
        if config.schedule == "cosine":
            learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, budget.steps)
        decay = config.weight_decay or None
        if config.optimizer == "sgd":
            return keras.optimizers.SGD(learning_rate, momentum=config.momentum, weight_decay=decay)
        return keras.optimizers.Adam(
            learning_rate, config.beta_1, config.beta_2, weight_decay=decay
        )

    def hparams(self, config, combination):
        keys = ("width", "optimizer", "crop_pad")
        values = {**dataclasses.asdict(combination), **{k: getattr(config, k) for k in keys}}
        if combination.method in AUGSHIFT_METHODS:  # only where it takes effect
            weight = 0.0 if combination.method == "shift_aug" else config.consistency_weight
            values["consistency_weight"] = weight
        return values

    def model_to_save(self, config, combination, model):
        """An AugShift row saves and exports its classifier (what predicts)."""
        return model.classifier if isinstance(model, AugShift) else model

    def evaluate(self, config, combination, model, data):
        classifier = self.model_to_save(config, combination, model)
        yield from evaluate(config, combination.dataset, classifier, data)

    def aggregate(self, config, records):
        """One record per row over its seeds (`trainers.shift_invariance.claims`)."""
        return aggregate(records, config.passes)

    def summarize(self, config, records, run_dir):
        """`results.md`'s section (`report`), `claims` in `results.json` (the poster's
        comparisons as paired differences, `claims.check`) and, per combination, the
        TensorBoard series `consistency/cons_m` (%) against the shift `m` (1..16)."""
        claims = check(records)
        series = {
            r["combination"]: {
                "consistency/cons_m": sorted((int(m), v) for m, v in r["curve"].items())
            }
            for row in records
            for r in row["seeds"]
        }
        return Summary(section(config, records, run_dir, claims), {"claims": claims}, series)


EXPERIMENT = ShiftInvariance()
