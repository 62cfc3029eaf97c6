"""The long preset's flatness rule (`curves.flatness`), its stopping callback and the
preset itself."""

import numpy as np
import pytest
from scipy import stats

from trainers.channelwise.config import PRESETS, ChannelwiseConfig
from trainers.channelwise.curves import flatness


def oracle(steps, values, window=0.4, level=0.95):
    """Slope per doubling and its interval, by the normal equations (numpy) and t."""
    steps, values = np.asarray(steps, float), np.asarray(values, float)
    keep = steps >= (1 - window) * steps.max()
    x, y = np.log2(steps[keep]), values[keep]
    design = np.stack([np.ones_like(x), x], axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    se = np.sqrt(residual @ residual / (x.size - 2) / np.sum((x - x.mean()) ** 2))
    half = stats.t.ppf(0.5 + level / 2, x.size - 2) * se
    return coef[1], coef[1] - half, coef[1] + half


def test_flatness_matches_the_normal_equations_and_judges_by_its_interval():
    rng = np.random.default_rng(0)
    steps = 60 * np.arange(1, 41)
    for rate, noise, flat in ((0.0, 0.05, True), (3.0, 0.05, False), (0.0, 6.0, False)):
        values = 40 + rate * np.log2(steps) + rng.normal(0, noise, steps.size)
        found = flatness(steps, values, tolerance=1.0)
        slope, low, high = oracle(steps, values)
        assert found["slope"] == pytest.approx(slope)
        assert (found["low"], found["high"]) == pytest.approx((low, high))
        assert found["points"] == np.sum(steps >= 0.6 * steps.max())
        assert found["flat"] is flat  # a noisy flat curve is not "flat" by a wide interval
    # A constant curve (the classifier at 100%) is flat: slope 0 with no spread.
    assert flatness(steps, np.full(steps.size, 100.0))["flat"] is True
    # Fewer than 4 points in the last 40% of the steps: never flat.
    assert flatness([60, 120, 180], [50.0, 50.0, 50.0])["flat"] is False
    with pytest.raises(ValueError, match="`steps` must be positive"):
        flatness([0, 60], [1.0, 2.0])


def test_stop_when_flat_stops_at_the_first_epoch_the_rule_holds():
    import keras

    from trainers.channelwise.summaries import StopWhenFlat

    class Constant(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_permuted_accuracy"] = 50.0

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.zeros((4, 2), "float32")
    history = model.fit(x, x[:, :1], epochs=20, batch_size=4, verbose=0,
                        callbacks=[Constant(), StopWhenFlat(1.0)])  # fmt: skip
    # Epoch n's window holds the epochs >= 0.6 n: 4 of them first at n = 8.
    assert len(history.history["loss"]) == 8


def scripted_fit(callbacks, epochs, initial_epoch=0):
    """Epochs trained by a tiny model whose `val_permuted_accuracy` follows a script:
    rising 12 points per doubling for 12 epochs, then flat within +-0.3 points."""
    import keras

    class Scripted(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            top = 20 + 12 * np.log2(13)
            logs["val_permuted_accuracy"] = (
                20 + 12 * np.log2(epoch + 1) if epoch < 12 else top + 0.3 * (-1) ** epoch
            )

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.zeros((4, 2), "float32")
    history = model.fit(x, x[:, :1], epochs=epochs, batch_size=4, verbose=0,
                        initial_epoch=initial_epoch, callbacks=[Scripted(), *callbacks])  # fmt: skip
    return initial_epoch + len(history.history["loss"])


def test_stop_when_flat_after_a_resume_judges_the_whole_history(tmp_path):
    """A run split by a resume at epoch 18 stops where the unsplit run does (25), its
    earlier epochs read back from `metrics.jsonl`; judged on the epochs since the resume
    alone (the old callback) it ran on to 31."""
    from trainers.channelwise.summaries import StopWhenFlat
    from trainers.framework.callbacks import JsonLinesLogger

    def run(path, epochs, initial_epoch=0, history=True):
        stop = StopWhenFlat(1.0, str(path) if history else None, "k3-permutenet")
        logger = JsonLinesLogger(str(path), {"combination": "k3-permutenet", "steps_per_epoch": 1})
        return scripted_fit([stop, logger], epochs, initial_epoch)

    assert run(tmp_path / "whole.jsonl", 40) == 25
    split = tmp_path / "split.jsonl"
    assert run(split, 18) == 18
    with open(split, "a") as f:  # another combination, and epoch 19 logged before a kill
        f.write('{"epoch": 5, "combination": "k3-classifier", "steps_per_epoch": 1, '
                '"val_permuted_accuracy": 0.0}\n')  # fmt: skip
        f.write('{"epoch": 19, "combination": "k3-permutenet", "steps_per_epoch": 1, '
                '"val_permuted_accuracy": 0.0}\n')  # fmt: skip
    assert run(split, 40, initial_epoch=18) == 25
    assert run(tmp_path / "alone.jsonl", 40, initial_epoch=18, history=False) == 31


def test_long_preset_is_k3_three_seeds_matched_until_flat():
    config = ChannelwiseConfig(**PRESETS["long"])
    assert config.grid_sizes == (3,) and config.seeds == (0, 1, 2)
    assert set(config.networks) == {"classifier", "permutenet", "sumnet"}
    assert set(config.tasks) == {"location", "class"} and config.matched
    assert config.stop_when_flat == 1.0 and config.epochs * 60 == 3000


def test_report_says_rows_stopped_when_flat_trained_up_to_the_cap():
    from trainers.channelwise.report import budget_text

    table = [dict(network=n, steps=6000, learning_rate=3e-3, beta_1=0.9, batch_size=48)
             for n in ("classifier", "permutenet")]  # fmt: skip
    text = budget_text(ChannelwiseConfig(**PRESETS["long"]), table)
    assert "every row trained up to 6000 steps, each stopped once its validation" in text
    assert "trained 6000 steps (batch 48" in budget_text(ChannelwiseConfig(), table)


def test_flatness_lines_give_each_runs_slope_at_its_end():
    import math

    from trainers.channelwise.curves import flatness_lines

    steps = [60 * e for e in range(1, 51)]
    curves = {
        "k3-zero-permutenet-location": [(x, 10 * math.log2(x), 0) for x in steps]
        + [(x, 40.0, 1) for x in steps],
        "k3-zero-sumnet-class": [(60, 20.0, 0), (120, 21.0, 0)],
    }
    lines = flatness_lines(curves, 1.0)
    # A curve exactly 10 log2(step) has slope 10 per doubling and no residual; a constant
    # one slope 0: the rule's interval is the point itself.
    assert lines[0] == (
        f"- k3-zero-permutenet-location, seed 0: {10 * math.log2(3000):.1f}% after 3000 "
        "steps; slope +10.00 [+10.00, +10.00] points per doubling: not flat"
    )
    assert lines[1].endswith("40.0% after 3000 steps; slope +0.00 [+0.00, +0.00] points "
                             "per doubling: flat")  # fmt: skip
    assert lines[2].endswith("too few epochs to judge (1 in the window)")  # 60 < 0.6 x 120
