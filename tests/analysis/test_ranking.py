import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tests.analysis.fakes import FakeTask, symmetric_patterns
from tfposenc.analysis import RANKING_METHODS, rank_position_channels
from tfposenc.models import GAPNet, ResNetBackbone


def images(n=12, size=8, seed=1):
    return np.random.default_rng(seed).uniform(0, 255, size=(n, size, size, 3)).astype("float32")


def planted_model(channel=3, channels=6, size=8):
    patterns = symmetric_patterns(channels, size, size)
    patterns[channel] = np.broadcast_to(np.linspace(-1, 1, size), (size, size))
    return FakeTask(patterns)


def test_planted_ramp_channel_ranks_first_for_every_flip_method():
    model, x = planted_model(), images()
    order, scores = rank_position_channels(model, x, "flip")
    assert order[0] == 3
    assert scores[3] > 0.1
    np.testing.assert_allclose(np.delete(scores, 3), 0.0, atol=1e-9)
    # The signed variants agree in magnitude and differ in sign.
    _, left = rank_position_channels(model, x, "flip_left")
    _, right = rank_position_channels(model, x, "flip_right")
    np.testing.assert_allclose(left, -right)
    assert abs(left[3]) > 0.01


def test_scores_match_a_direct_computation_over_batches():
    model, x = planted_model(), images(10)
    # Oracle: per-image pooled features of x and of its mirror image, by hand.
    intensity = x.astype("float64").mean(axis=-1)
    z1 = np.einsum("bhw,chw->bc", intensity, model.patterns) / 64
    z2 = np.einsum("bhw,chw->bc", intensity[:, :, ::-1], model.patterns) / 64
    dataset = tf.data.Dataset.from_tensor_slices((x, np.zeros(10, "int64"))).batch(3)
    order, scores = rank_position_channels(model, dataset, "flip")
    np.testing.assert_allclose(scores, np.abs(z1 - z2).mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(order, np.argsort(-scores, kind="stable"))
    _, left = rank_position_channels(model, dataset, "flip_left")
    np.testing.assert_allclose(left, (z1 - z2).mean(axis=0), rtol=1e-6, atol=1e-9)


def test_flip_symmetric_channels_score_zero():
    model = FakeTask(symmetric_patterns(5))
    for method in ("flip", "flip_left", "flip_right"):
        order, scores = rank_position_channels(model, images(), method)
        np.testing.assert_allclose(scores, 0.0, atol=1e-9)
        assert sorted(order.tolist()) == list(range(5))


def test_label_method_is_eta_squared_against_anova():
    rng = np.random.default_rng(0)
    patterns = rng.normal(size=(4, 8, 8))
    model = FakeTask(patterns)
    x = images(30, seed=2)
    labels = np.arange(30) % 3
    x[labels == 1] *= 0.5  # channel values now depend on the label through intensity
    order, scores = rank_position_channels(
        model, [(x[:16], labels[:16]), (x[16:], labels[16:])], "label"
    )
    pooled = model.pooled_features(x)
    for c in range(4):
        groups = [pooled[labels == g, c] for g in range(3)]
        f = stats.f_oneway(*groups).statistic
        eta = f * 2 / (f * 2 + (30 - 3))
        assert scores[c] == pytest.approx(eta, rel=1e-6)
    assert np.all((scores >= 0) & (scores <= 1))


def test_label_method_scores_a_constant_channel_zero():
    patterns = np.zeros((2, 8, 8))
    patterns[1] = 1.0
    model = FakeTask(patterns)
    _, scores = rank_position_channels(model, [(images(6), np.arange(6) % 2)], "label")
    assert scores[0] == 0.0


def test_real_gapnet_in_inference_mode():
    keras.utils.set_random_seed(0)
    model = GAPNet(ResNetBackbone(stem="cifar", width=4), 4)
    x = images(6, size=32)
    dataset = tf.data.Dataset.from_tensor_slices((x, np.arange(6) % 4))  # unbatched
    order, scores = rank_position_channels(model, dataset)
    z1 = keras.ops.convert_to_numpy(model.pooled_features(x, training=False))
    z2 = keras.ops.convert_to_numpy(model.pooled_features(x[:, :, ::-1], training=False))
    np.testing.assert_allclose(scores, np.abs(z1 - z2).mean(axis=0), rtol=1e-4, atol=1e-6)
    assert scores.shape == (32,) and sorted(order.tolist()) == list(range(32))
    assert scores.max() > 0  # zero padding: some channel tells left from right


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: rank_position_channels(m, images(), "vertical"), "Received: method='vertical'"),
        (lambda m: rank_position_channels(m, [(images(), None)][:0]), "empty"),
        (lambda m: rank_position_channels(m, images(), "label"), "one integer label"),
        (
            lambda m: rank_position_channels(m, [(images(2), np.zeros((2, 8, 8)))], "label"),
            r"labels of shape \(2, 8, 8\)",
        ),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(planted_model())


def test_every_listed_method_ranks_every_channel_and_the_attack_offers_exactly_them():
    from trainers.attack.config import AttackConfig

    model = planted_model()
    labelled = [(images(4), np.arange(4) % 2)]
    for method in RANKING_METHODS:
        order, scores = rank_position_channels(model, labelled, method)
        assert sorted(order.tolist()) == list(range(len(scores)))
    field = {f.name: f for f in dataclasses.fields(AttackConfig)}["ranking"]
    assert set(field.metadata["choices"]) == set(RANKING_METHODS)


def test_magnitude_method_is_mean_absolute_pooled_value():
    model, x = planted_model(), images(10)
    pooled = np.abs(model.pooled_features(x))
    order, scores = rank_position_channels(model, [x[:4], x[4:]], "magnitude")
    np.testing.assert_allclose(scores, pooled.mean(axis=0), rtol=1e-9)
    np.testing.assert_array_equal(order, np.argsort(-scores, kind="stable"))


def test_spearman_matches_scipy_with_ties_and_is_nan_for_a_constant():
    from tfposenc.analysis import spearman

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=20), rng.normal(size=20)
    b[:5] = b[0]  # ties
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, rel=1e-12)
    assert spearman(a, 2 * a + 1) == pytest.approx(1.0)
    assert np.isnan(spearman(a, np.ones(20)))
    with pytest.raises(ValueError, match="1-D score vectors of one length"):
        spearman(a, b[:3])


def test_flip_2d_sees_a_row_channel_that_the_left_right_flip_cannot():
    patterns = symmetric_patterns(6)
    patterns = patterns + patterns[:, ::-1]  # mirror-symmetric both ways
    patterns[2] = np.broadcast_to(np.linspace(-1, 1, 8)[:, None], (8, 8))  # codes the row
    model, x = FakeTask(patterns), images(10)
    _, flip = rank_position_channels(model, x, "flip")
    assert flip[2] == pytest.approx(0.0, abs=1e-9)  # a row ramp is its own mirror image
    order, scores = rank_position_channels(model, x, "flip_2d")
    assert order[0] == 2
    intensity = x.astype("float64").mean(axis=-1)
    z = [np.einsum("bhw,chw->bc", i, patterns) / 64
         for i in (intensity, intensity[:, :, ::-1], intensity[:, ::-1])]  # fmt: skip
    oracle = (np.abs(z[0] - z[1]) + np.abs(z[0] - z[2])).mean(axis=0) / 2
    np.testing.assert_allclose(scores, oracle, rtol=1e-6, atol=1e-12)


def test_equal_scores_warn_that_the_ranking_means_nothing():
    grey = np.full((4, 8, 8, 3), 128.0, "float32")  # the README's old example input
    model = planted_model()
    with pytest.warns(UserWarning, match="every channel's 'flip' score is 0.0"):
        order, scores = rank_position_channels(model, grey, "flip")
    assert order.tolist() == list(range(6))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rank_position_channels(model, images(), "flip")  # real scores: no warning
