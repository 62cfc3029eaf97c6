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

from trainers.attack.config import PRESETS, AttackConfig, Combination
from trainers.framework.experiment import Budget, Data, Experiment, steps_for


class Attack(Experiment):
    name = "attack"
    config_class = AttackConfig
    presets = PRESETS
    description = __doc__.splitlines()[0]
    prog = "python -m trainers.attack"

    def combinations(self, config):
        from trainers.attack import data

        if config.models is not None:
            data.check_channelwise_run(config)
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
        from trainers.attack import data

        path = data.saved_model_path(config, combination)
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
        mean, std = data.segmentation_stats(config)
        classes = data.segmentation_classes(config)[0]
        return Segmenter(backbone, classes, config.head_channels, mean=mean, std=std)

    def data(self, config, combination):
        from trainers.attack import data

        make = getattr(data, f"{combination.task}_data")
        train, test, ranking, samples = make(config)
        return Data(train, None, test, extra={"ranking": ranking, "samples": samples})

    def budget(self, config, combination):
        """A loaded model trains 0 epochs (it is evaluated as it is)."""
        from tfposenc.data import info
        from trainers.attack import data

        if combination.task == "location":
            examples = config.location_train_examples
            examples = examples or info(config.location_dataset).splits["train"]
            epochs = config.location_epochs
        else:
            examples, epochs = config.train_examples, config.epochs
        if data.saved_model_path(config, combination) is not None:
            epochs = 0
        return Budget(epochs, steps_for(examples, config.batch_size))

    def optimizer(self, config, combination, budget):
        import keras

        if combination.task == "location":
            return super().optimizer(config, combination, budget)
        return keras.optimizers.Adam(config.segmentation_learning_rate, beta_1=0.9)

    def loss(self, config, combination):
        import keras

        from trainers.attack.data import segmentation_classes

        if combination.task == "location":
            return super().loss(config, combination)
        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=segmentation_classes(config)[1]
        )

    def hparams(self, config, combination):
        return {
            **dataclasses.asdict(combination),
            "backbone": config.backbone,
            "width": config.width,
        }

    def evaluate(self, config, combination, model, data):
        from trainers.attack import measure
        from trainers.attack.data import saved_model_path

        yield "source", saved_model_path(config, combination) or "trained"
        yield from measure.attack(
            config, combination, model, data, self.input_shape(config, combination)
        )

    def report(self, config, records, run_dir):
        from trainers.attack.report import report

        return report(config, records, run_dir)

    def finalize(self, config, records):
        """`sweep` and `artifacts`: every combination's records in one flat list each."""
        return {
            "sweep": [x for r in records for x in r["sweep"]],
            "artifacts": [a for r in records for a in r["artifacts"]],
        }


EXPERIMENT = Attack()
