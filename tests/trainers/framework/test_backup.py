import json
import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from trainers.framework.callbacks import JsonLinesLogger
from trainers.framework.engines import fit_resumable


def tiny_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse", jit_compile=False)
    return model


def data():
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, x.sum(1, keepdims=True))).batch(8)


def test_finished_fit_is_not_repeated_after_a_restart(tmp_path):
    model = tiny_model()
    history = fit_resumable(model, data(), 3, str(tmp_path), verbose=0)
    assert len(history.history["loss"]) == 3
    weights = model.get_weights()
    again = tiny_model()
    history = fit_resumable(again, data(), 3, str(tmp_path), verbose=0)
    assert history.history.get("loss", []) == []  # nothing left to train
    for a, b in zip(again.get_weights(), weights):
        np.testing.assert_array_equal(a, b)


def test_interrupted_swap_is_recovered(tmp_path):
    model = tiny_model()
    fit_resumable(model, data(), 2, str(tmp_path), verbose=0)
    backup = tmp_path / "backup"
    # A kill between the two renames: only state.old and a half-written incoming/ exist.
    os.rename(backup / "state", backup / "state.old")
    os.makedirs(backup / "incoming")
    (backup / "incoming" / "latest.weights.h5").write_bytes(b"\x89HDF")
    resumed = tiny_model()
    history = fit_resumable(resumed, data(), 4, str(tmp_path), verbose=0)
    assert len(history.history["loss"]) == 2  # epochs 3 and 4 only
    assert json.load(open(backup / "state" / "training_metadata.json"))["epoch"] == 4
    assert not (backup / "incoming").exists() and not (backup / "state.old").exists()
    shutil.rmtree(tmp_path)


def test_json_lines_logger(tmp_path):
    path = tmp_path / "m.jsonl"
    model = tiny_model()
    model.fit(data(), epochs=2, verbose=0, callbacks=[JsonLinesLogger(str(path), {"run": "x"})])
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]
    assert all(line["run"] == "x" and np.isfinite(line["loss"]) for line in lines)


def test_step_timer_takes_the_median_interval_within_epochs(monkeypatch):
    from trainers.framework import callbacks

    clock = iter([0.0, 1.0, 3.0, 100.0, 100.5, 101.5])
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    timer = callbacks.StepTimer()
    assert timer.seconds() is None
    for epoch, steps in ((0, 3), (1, 3)):
        timer.on_epoch_begin(epoch)
        for step in range(steps):
            timer.on_train_batch_end(step)
    assert timer.intervals == [1.0, 2.0, 0.5, 1.0]  # not the 97 s between epochs
    assert timer.seconds() == 1.0
