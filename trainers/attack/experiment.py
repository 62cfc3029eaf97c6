"""The position attack: rank the position-encoding channels, remove them, measure by region.

For every padding mode this trains (or loads, `--models RUN_DIR`) a `Segmenter` on digit
segmentation canvases (k x k digits) and a location model on grid canvases: a pooled
dense read-out (`Classifier`, `location`), which can locate only through its channels
(GAPNet's 3x3 head, `location_gapnet`, is an optional extra row: on a small final map it
reads position from its own padding). Both train with random horizontal flips, as the
authors' DeepLab does, so a mirrored canvas keeps its meaning and `|z(x) - z(flip x)|`
isolates position. It ranks the pooled backbone channels by `--ranking`'s first method
(default `flip_2d`: left-right and up-down flips, so channels that code the row are
ranked too; the records name it under `ranking`) on training canvases, never the
evaluation split, and by channel magnitude (mean |z|, the control:
`flip_magnitude_spearman` says how alike flip and magnitude are); removes the top-ranked
vs the magnitude-ranked vs random vs magnitude-matched random channels (`random_matched`:
as many per decile of mean |z| as the ranked set) at each fraction with no retraining
(`tfposenc.analysis.ablation_sweep`, `--random-draws` draws, `--claim-draws` at the
claim fractions; location models also record per-canvas hits there, `canvas_values`,
for the paired magnitude claim); and measures the damage
by region (segmentation: mIoU overall, the authors' left / right / centre, and the
border ring of cells vs the inner cells; location: accuracy on border vs inner cells).
`claims` in `results.json` judges "ranked removal hurts more than random", "... than
the magnitude control" and "the damage is larger at the border than inside" per model:
`shown` / `not shown` / `inconclusive` by the tests of `trainers.attack.claims`
(inconclusive with fewer than 19 draws, or on a model too close to chance for its
damage to mean anything). Border artifacts per stage: a constant input
(blind to reflect and replicate by construction) and the per-position mean over random
noise inputs (`random_border_gap` against its sampling error), for the trained models
and for untrained backbones in all four padding modes. Writes `results.md`,
`results.json` (with `sweep`, `artifacts`, `architecture_artifacts`, `claims`),
`sweep-<padding>-<task>.png`, `qualitative-<padding>.png` (canvas, truth, prediction after
random and after ranked removal), `feature-maps-*.png`, and TensorBoard: per combination
the sweep as scalars `sweep/<selection>/<region>` against the percentage removed.

Commands and cost (measured on the 2-core CPU machine this project is developed on):

    python -m trainers.attack                    # default: digits, 6 min 53 s idle (README.md)
    python -m trainers.attack --preset smoke     # ~40 s; what the tests run
    python -m trainers.attack --preset paper     # Cityscapes, DeepLabv3-style ResNet-50 (GPU)
    python -m trainers.attack --models runs/channelwise --location-grid-size 5

`--models` reuses the location models
`models/k<k>-<padding>-classifier-location-seed<seed>.keras` (and
`...-gapnet-location-seed<seed>.keras` for `location_gapnet`) of a channel-wise run (its
dataset and cell size must match) and any segmenter of an earlier attack run in that
directory; the rest is trained. `--seeds 0 1 2` attacks every model once per seed (its
data, ranking canvases and random draws seeded by it); `results.json` then holds one
record per model with the mean and `_std` of its unablated metrics and the per-seed
records under `seeds`.
"""

import dataclasses

import keras

from tfposenc.analysis.regions import COLUMN_REGIONS, GRID_REGIONS
from tfposenc.data import info
from tfposenc.models import Classifier, GAPNet, Segmenter, build_backbone
from trainers.attack import data, measure
from trainers.attack.claims import claims
from trainers.attack.config import LOCATION_NETWORKS, SPEC, Combination
from trainers.attack.data import saved_model_path, segmentation_classes
from trainers.attack.measure import architecture_artifacts
from trainers.attack.report import report, sweep_series
from trainers.framework.experiment import (
    Budget,
    Data,
    Experiment,
    Summary,
    TestSet,
    steps_for,
)
from trainers.framework.seeds import aggregate as aggregate_seeds


class Attack(Experiment, spec=SPEC):
    def combinations(self, config):
        if config.models is not None:
            data.check_channelwise_run(config)
        return [
            Combination(m, t, s)
            for m in config.padding_modes
            for t in config.tasks
            for s in config.seed_list
        ]

    def input_shape(self, config, combination):
        if combination.task in LOCATION_NETWORKS:
            meta = info(config.location_dataset)
            size = (config.location_cell_size or meta.image_size[0]) * config.location_grid_size
            return (size, size, 3)
        if config.dataset == "cityscapes":
            return (*config.image_size, 3)
        return (config.cell_size * config.grid_size,) * 2 + (3,)

    def build_model(self, config, combination):
        options = dict(
            stem=config.stem,
            width=config.width,
            padding_mode=combination.padding_mode,
            input_shape=self.input_shape(config, combination),
        )
        if combination.task in LOCATION_NETWORKS:
            meta = info(config.location_dataset)
            backbone = build_backbone(config.backbone, **options)
            head = Classifier if combination.task == "location" else GAPNet
            return head(backbone, config.location_grid_size**2, mean=meta.mean, std=meta.std)
        backbone = build_backbone(config.backbone, output_stride=config.output_stride, **options)
        mean, std = data.segmentation_stats(config)
        classes = data.segmentation_classes(config)[0]
        return Segmenter(backbone, classes, config.head_channels, mean=mean, std=std)

    def data(self, config, combination):
        make = data.segmentation_data if combination.task == "segmentation" else data.location_data
        train, test, ranking, samples = make(config, self.seed(config, combination))
        return Data(train, None, test, extra={"ranking": ranking, "samples": samples})

    def evaluation_data(self, config, combination):
        """The test set of `data` (`(images, labels)`; label maps for segmentation,
        Cityscapes' ignored label not scored)."""
        ignore = None
        if combination.task not in LOCATION_NETWORKS:
            ignore = data.segmentation_classes(config)[1]
        return TestSet(self.data(config, combination).test, ignore_class=ignore)

    def load_path(self, config, combination):
        """`--models`: the `.keras` file of the combination's model, evaluated as it is."""
        return data.saved_model_path(config, combination)

    def budget(self, config, combination):
        if combination.task in LOCATION_NETWORKS:
            examples = config.location_train_examples
            examples = examples or info(config.location_dataset).splits["train"]
            epochs = config.location_epochs
        else:
            examples, epochs = config.train_examples, config.epochs
        return Budget(epochs, steps_for(examples, config.batch_size))

    def optimizer(self, config, combination, budget):
        if combination.task in LOCATION_NETWORKS:
            return super().optimizer(config, combination, budget)
        return keras.optimizers.Adam(config.segmentation_learning_rate, beta_1=0.9)

    def loss(self, config, combination):
        if combination.task in LOCATION_NETWORKS:
            return super().loss(config, combination)
        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=segmentation_classes(config)[1]
        )

    def metrics(self, config, combination):
        """Location: accuracy; segmentation: `pixel_accuracy` (not the mIoU it is judged by)."""
        if combination.task in LOCATION_NETWORKS:
            return super().metrics(config, combination)
        return [keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy")]

    def hparams(self, config, combination):
        return {
            **dataclasses.asdict(combination),
            "backbone": config.backbone,
            "width": config.width,
        }

    def evaluate(self, config, combination, model, data):
        yield "source", saved_model_path(config, combination) or "trained"
        yield from measure.attack(
            config, combination, model, data, self.input_shape(config, combination)
        )

    def aggregate(self, config, records):
        """One record per model over its seeds (`trainers.framework.seeds.aggregate`): the
        lowest seed's values (its `sweep`, `artifacts` and `ranking`, which the claims and
        the report read), the mean and `_std` of the unablated metric per region, `chance`
        and `flip_magnitude_spearman`, and the per-seed records under `seeds`."""
        regions = dict.fromkeys((*GRID_REGIONS, *COLUMN_REGIONS))
        averaged = [f"{m}_{r}" for m in ("accuracy", "miou") for r in regions]
        return aggregate_seeds(records, (*averaged, "chance", "flip_magnitude_spearman"))

    def summarize(self, config, records, run_dir):
        """`results.md`'s section and figures, and `results.json`'s `sweep` and
        `artifacts` (every combination's records in one flat list each),
        `architecture_artifacts` (untrained backbones, all four padding modes, computed
        once here), `flip_magnitude_spearman` per model and `claims`
        (`trainers.attack.claims`)."""
        untrained = architecture_artifacts(config, self.input_shape)
        extra = {
            "sweep": [x for r in records for x in r["sweep"]],
            "artifacts": [a for r in records for a in r["artifacts"]],
            "architecture_artifacts": untrained,
            "flip_magnitude_spearman": {
                r["combination"]: r.get("flip_magnitude_spearman") for r in records
            },
            "claims": claims(config, records),
        }
        section = report(config, records, run_dir, untrained, extra["claims"])
        return Summary(section, extra, self.series(config, records))

    def series(self, config, records):
        """Per combination, the sweep against the percentage of channels removed:
        `sweep/<selection>/<region>` (%; ranked, random, magnitude, ...) and
        `sweep/random_sd/<region>`."""
        return {r["combination"]: sweep_series(r["sweep"]) for row in records for r in row["seeds"]}


EXPERIMENT = Attack()
