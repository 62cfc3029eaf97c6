"""A tiny experiment for the runner's tests: 4x4 images, a pooled dense layer, seconds per run.

python -m tests.trainers.framework.tiny_experiment --out DIR [--sizes 1 2] [--epochs 3]
"""

import dataclasses

from trainers.framework import cli
from trainers.framework.config import TrainConfig, option
from trainers.framework.experiment import Budget, Data, Experiment


@dataclasses.dataclass
class TinyConfig(TrainConfig):
    units: tuple[int, ...] = option((1, 2), "hidden units, one combination each")
    epochs: int = option(3, "epochs")
    batch_size: int = option(8, "batch size")
    learning_rate: float = option(0.05, "Adam learning rate", minimum=0.0)
    verbose: str = option("0", "Keras verbosity", choices=("auto", "0", "1", "2"))
    out: str = option("runs/tiny", "run directory")


@dataclasses.dataclass(frozen=True)
class Tiny:
    units: int

    @property
    def name(self):
        return f"tiny{self.units}"


class TinyExperiment(Experiment):
    name = "tiny"
    config_class = TinyConfig
    presets = {"default": {}}
    description = "tiny"

    def combinations(self, config):
        return [Tiny(u) for u in config.units]

    def input_shape(self, config, combination):
        return (4, 4, 3)

    def build_model(self, config, combination):
        import keras

        inputs = keras.Input((4, 4, 3))
        x = keras.layers.Rescaling(1 / 255.0)(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dense(combination.units + 1)(x)  # linear: a NaN input stays NaN
        return keras.Model(inputs, keras.layers.Dense(2)(x))

    def data(self, config, combination):
        import numpy as np
        import tensorflow as tf

        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, size=(64, 4, 4, 3)).astype("float32")
        labels = (images[..., 0].mean((1, 2)) > 127).astype("int64")
        source = tf.data.Dataset.from_tensor_slices((images, labels))
        train = source.shuffle(64, seed=config.seed).repeat().batch(config.batch_size)
        return Data(train, source.batch(32), source.batch(16))

    def budget(self, config, combination):
        return Budget(config.epochs, 4)

    def evaluate(self, config, combination, model, data):
        from trainers.framework import evaluators

        yield from evaluators.classification(model, data.test)

    def report(self, config, results, run_dir):
        return ["# tiny", ""]


EXPERIMENT = TinyExperiment()

if __name__ == "__main__":
    raise SystemExit(cli.main(EXPERIMENT))
