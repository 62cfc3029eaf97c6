"""Per-step losses of one small training, for tests/trainers/framework/test_multiworker.py.

    python -m trainers.launch --workers N -- tests.trainers.framework.multiworker_loop OUT.json
    python -m tests.trainers.framework.multiworker_loop OUT.json --fit      # plain model.fit

A dense network on fixed random data, Adam, global batch 16, 2 epochs of 8 steps, seed
0: the same data order whatever the number of workers. Each process writes
`OUT.json.<rank>` (`fit`: `OUT.json.fit`) with the per-step losses (recovered from the
running means that `fit` and `fit_multi_worker` pass to `on_train_batch_end`), the
epoch logs and the final weights' sum.
"""

import json
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf

GLOBAL_BATCH, STEPS, EPOCHS = 16, 8, 2


class Record(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps, self.epochs = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.previous = 0.0

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])
        self.steps.append((batch + 1) * mean - batch * self.previous)
        self.previous = mean

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append({k: float(v) for k, v in logs.items()})


def main(argv):
    path, plain = argv[0], "--fit" in argv
    if not plain:
        from trainers.framework.multiworker import loop

        strategy, task = loop.make_strategy("ring")
    else:
        strategy, task = tf.distribute.get_strategy(), None
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(GLOBAL_BATCH * STEPS, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    train = (
        tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(GLOBAL_BATCH, drop_remainder=True)
    )
    with strategy.scope():
        model = keras.Sequential(
            [keras.Input((8,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(2)]
        )
        model.compile(
            keras.optimizers.Adam(0.01),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
    record = Record()
    with tempfile.TemporaryDirectory() as scratch:
        if plain:
            model.fit(train, epochs=EPOCHS, steps_per_epoch=STEPS, callbacks=[record], verbose=0)
        else:
            loop.fit_multi_worker(
                model, strategy, task, train, EPOCHS, scratch, steps_per_epoch=STEPS,
                callbacks=[record], verbose=0,
            )  # fmt: skip
    suffix = "fit" if plain else str(task.rank)
    with open(f"{path}.{suffix}", "w") as f:
        json.dump(
            {
                "replicas": strategy.num_replicas_in_sync,
                "steps": record.steps,
                "epochs": record.epochs,
                "weights": float(sum(np.sum(w) for w in model.get_weights())),
            },
            f,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
