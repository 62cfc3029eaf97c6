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
