"""One engine contract check, run as its own process (tests/trainers/framework/test_engines.py).

    python -m tests.trainers.framework.engine_check OUT --strategy one_device
    python -m trainers.launch --workers 2 -- tests.trainers.framework.engine_check OUT

Through the engine `trainers.framework.strategy.make_engine` picks for `--strategy`:
fit a small model 2 epochs, then fit a fresh model to 3 epochs from the same backup
(a restart: only epoch 3 trains, from the restored weights), ask the engine who writes
and to agree on flags only the writer sets, and write `OUT/engine.<rank>.json`.
"""

import argparse
import json
import os
import types


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--strategy", default="one_device")
    args = parser.parse_args(argv)
    from trainers.framework import strategy

    config = types.SimpleNamespace(strategy=args.strategy, devices=(), collective="ring")
    engine = strategy.make_engine(config)  # first: no TensorFlow op before a multi-worker one
    import keras
    import numpy as np
    import tensorflow as tf

    rank = engine.task.rank if hasattr(engine, "task") else 0
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    train = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(16, drop_remainder=True)

    def model():
        keras.utils.set_random_seed(0)
        with engine.strategy.scope():
            network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
            network.compile(
                keras.optimizers.Adam(0.05),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            )
        return network

    run = os.path.join(args.out, "run")
    with engine.directory(run) as directory:
        checkpoints = os.path.join(directory, "checkpoints")
        first = engine.fit(model(), train, 2, checkpoints, steps_per_epoch=4, verbose=0)
        restarted = model()
        second = engine.fit(restarted, train, 3, checkpoints, steps_per_epoch=4, verbose=0)
        report = {
            "writes": engine.writes,
            "writes_to_out": directory == run,
            "first_epochs": len(first.history["loss"]),
            "second_epochs": len(second.history.get("loss", [])),
            "agreed": engine.agree([engine.writes, not engine.writes]),
            "weights": float(sum(np.sum(w) for w in restarted.get_weights())),
            "workers": engine.description["workers"],
        }
    report["scratch_removed"] = report["writes_to_out"] or not os.path.exists(directory)
    engine.finish()
    with open(os.path.join(args.out, f"engine.{rank}.json"), "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main()
