"""What an experiment declares; `trainers.runner` does the rest.

An experiment module (`trainers/channelwise.py` is the model to copy) holds a config
dataclass (a `trainers.config.TrainConfig` subclass), its presets, and one `Experiment`
subclass that answers the questions only it can answer:

- `combinations(config)`: the list of runs, each a frozen dataclass with a `name`
  property (used for file names: `results/<name>.json`, `exports/<name>/`, ...).
- `build_model(config, combination)`: the uncompiled Keras model, built for
  `input_shape(config, combination)`. The runner builds and checks every combination's
  model before anything is written (the preflight), so an impossible setting fails at once.
- `data(config, combination)`: a `Data` of `tf.data` pipelines. The preflight makes the
  first combination's, so a missing dataset fails before anything is written too.
- `evaluate(config, combination, model, data)`: yields `(name, value)` pairs (see
  `trainers.evaluators`); they become the combination's result. JSON-able values only.
- `report(config, results, run_dir)`: the experiment's own section of `results.md` (a
  list of markdown lines) and any figures it draws from `results`.

Optional hooks with defaults: `compile` (Adam from the config, sparse cross-entropy on
logits, accuracy), `callbacks` (extra Keras callbacks, e.g. TensorBoard images),
`hparams` (TensorBoard hparams of a combination), `epochs` (`config.epochs_for`, the
place for per-network budgets) and `check_model`. The module then only needs
`main = EXPERIMENT.main` for its console script. Importing this module does not import
TensorFlow; an experiment imports the library inside its hooks, so `--help` stays fast.
"""

import dataclasses
import typing

from trainers.config import TrainConfig


@dataclasses.dataclass
class Data:
    """An experiment's pipelines for one combination.

    Attributes:
        train: `tf.data.Dataset` of `(inputs, labels)` batches, repeated.
        steps_per_epoch: int, training steps per epoch.
        validation: `tf.data.Dataset` of batches evaluated after every epoch, or None.
        test: `tf.data.Dataset` of batches that `evaluate` consumes.
        extra: anything else the experiment's hooks share (e.g. sample images).
    """

    train: typing.Any
    steps_per_epoch: int
    validation: typing.Any
    test: typing.Any
    extra: dict = dataclasses.field(default_factory=dict)


class Experiment:
    """The declarations of one experiment (see the module docstring)."""

    name = None  # the experiment's tag in `config.json`, e.g. "channelwise"
    config_class = TrainConfig
    presets = {"default": {}}
    description = ""
    prog = None  # the command in usage lines, e.g. "python -m trainers.channelwise"

    def combinations(self, config):
        raise NotImplementedError

    def input_shape(self, config, combination):
        """`(height, width, channels)` of one input; the export accepts this size."""
        raise NotImplementedError

    def build_model(self, config, combination):
        raise NotImplementedError

    def data(self, config, combination):
        raise NotImplementedError

    def evaluate(self, config, combination, model, data):
        raise NotImplementedError

    def report(self, config, results, run_dir):
        return []

    def epochs(self, config, combination):
        return config.epochs_for(combination)

    def hparams(self, config, combination):
        return dataclasses.asdict(combination)

    def callbacks(self, config, combination, data, log_dir):
        return []

    def compile(self, config, combination, model):
        import keras

        model.compile(
            optimizer=keras.optimizers.Adam(
                config.learning_rate, beta_1=config.beta_1, beta_2=config.beta_2
            ),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            jit_compile=config.jit_compile,
        )

    def check_model(self, config, combination, model):
        """Runs one zero input through `model`; raises ValueError on non-finite output."""
        import numpy as np

        outputs = np.asarray(model(np.zeros((1, *self.input_shape(config, combination)))))
        if not np.all(np.isfinite(outputs)):
            raise ValueError(f"{combination.name}: the untrained model's output is not finite")

    def main(self, argv=None):
        """The command line: `python -m trainers.<name>` and the console script."""
        from trainers import cli

        return cli.main(self, argv)


__all__ = ["Data", "Experiment"]
