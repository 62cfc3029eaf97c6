import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.analysis.fakes import FakeTask, symmetric_patterns
from tfposenc.analysis import DEFAULT_FRACTIONS, ablation_sweep, accuracy
from tfposenc.analysis.ablation_sweep import random_draws_for
from tfposenc.models import GAPNet, ResNetBackbone

X = np.random.default_rng(0).uniform(0, 255, size=(5, 8, 8, 3)).astype("float32")


def fake(channels=20):
    return FakeTask(symmetric_patterns(channels))


class Recorder:
    """An evaluator that records each call's ablation and pooled features."""

    metric = "probe"

    def __init__(self):
        self.calls = []

    def __call__(self, model, dataset):
        pooled = np.asarray(model.pooled_features(dataset, training=False))
        self.calls.append((list(model.ablated_channels), pooled))
        return float(len(self.calls))


def test_default_fractions_are_the_issues():
    percent = [100 * f for f in DEFAULT_FRACTIONS]
    assert percent == pytest.approx([0, 1, 2.5, 5, 10, 20, 40, 60, 80, 90, 95])


def test_zeroes_exactly_the_requested_channels():
    model, recorder = fake(), Recorder()
    base = np.asarray(model.pooled_features(X))
    order = np.random.default_rng(3).permutation(20)
    ablation_sweep(
        model, X, order, fractions=(0.0, 0.1, 0.25, 0.5), random_draws=3, evaluate=recorder
    )
    assert len(recorder.calls) == 1 + 3 * (1 + 3)  # fraction 0: one set, evaluated once
    for channels, pooled in recorder.calls:
        np.testing.assert_array_equal(pooled[:, channels], 0.0)
        keep = np.setdiff1d(np.arange(20), channels)
        np.testing.assert_array_equal(pooled[:, keep], base[:, keep])
    ranked_sets = [channels for channels, _ in recorder.calls if len(channels) in (2, 5, 10)]
    assert sorted(order[:2].tolist()) in ranked_sets
    assert sorted(order[:5].tolist()) in ranked_sets
    assert sorted(order[:10].tolist()) in ranked_sets


def test_records_hold_ranked_and_random_statistics():
    model = fake(10)
    order = np.arange(10)[::-1]

    def evaluate(model, dataset):
        # Distinct per channel set: the sum of the removed channel indices.
        return {"overall": float(sum(model.ablated_channels)), "border": 1.0}

    records = ablation_sweep(
        model, X, order, fractions=(0.0, 0.3), random_draws=4, evaluate=evaluate
    )
    assert len(records) == 2 * 2 * 2  # fractions x selections x regions
    ranked = [r for r in records if r["selection"] == "ranked" and r["region"] == "overall"]
    assert [r["num_channels"] for r in ranked] == [0, 3]
    assert ranked[1]["value"] == 9 + 8 + 7 and ranked[1]["std"] == 0.0
    random = next(
        r
        for r in records
        if r["selection"] == "random" and r["region"] == "overall" and r["fraction"] == 0.3
    )
    draws = random_draws_for(10, 3, 4, seed=0)
    expected = [float(sum(d)) for d in draws]
    assert random["values"] == expected and random["draws"] == 4
    assert random["value"] == pytest.approx(np.mean(expected))
    assert random["std"] == pytest.approx(np.std(expected))
    assert random["metric"] == "value" and random["fraction"] == 0.3
    zero = [r for r in records if r["fraction"] == 0.0 and r["region"] == "overall"]
    assert {r["value"] for r in zero} == {0.0} and all(r["std"] == 0 for r in zero)
    assert set(records[0]) == {
        "selection",
        "fraction",
        "num_channels",
        "region",
        "metric",
        "value",
        "std",
        "values",
    }


def test_random_draws_are_distinct_and_seeded():
    draws = random_draws_for(20, 4, 5, seed=0)
    assert len(draws) == 5 and len({tuple(d) for d in draws}) == 5
    assert all(len(d) == 4 and len(set(d)) == 4 for d in draws)
    assert draws == random_draws_for(20, 4, 5, seed=0)
    assert draws != random_draws_for(20, 4, 5, seed=1)
    # Only 3 distinct subsets of 1 of 3 channels exist; at 0 or all channels just one.
    assert sorted(random_draws_for(3, 1, 5, seed=0)) == [[0], [1], [2]]
    assert random_draws_for(3, 3, 5, seed=0) == [[0, 1, 2]]

    def sets(seed):
        model, recorder = fake(), Recorder()
        ablation_sweep(
            model, X, np.arange(20), fractions=(0.2,), random_draws=5, evaluate=recorder, seed=seed
        )
        return [c for c, _ in recorder.calls]

    first = sets(0)
    assert len(first) == 6 and len({tuple(c) for c in first}) == 6
    assert first == sets(0) and first != sets(1)


def test_restores_previous_ablation_also_when_evaluate_raises():
    model = fake()
    model.ablate([7])
    ablation_sweep(model, X, np.arange(20), fractions=(0.5,), random_draws=2, evaluate=Recorder())
    assert model.ablated_channels == [7]

    def broken(model, dataset):
        if len(model.ablated_channels) > 0:
            raise RuntimeError("boom")
        return 1.0

    with pytest.raises(RuntimeError, match="boom"):
        ablation_sweep(model, X, np.arange(20), fractions=(0.0, 0.5), evaluate=broken)
    assert model.ablated_channels == [7]
    model.ablate([])
    ablation_sweep(model, X, np.arange(20), fractions=(0.5,), evaluate=Recorder())
    assert model.ablated_channels == []


def test_real_gapnet_with_default_accuracy():
    keras.utils.set_random_seed(0)
    model = GAPNet(ResNetBackbone(stem="cifar", width=4), 4)
    x = np.random.default_rng(1).uniform(size=(8, 32, 32, 3)).astype("float32")
    y = np.arange(8) % 4
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    seen = []

    def evaluate(model, dataset):
        pooled = keras.ops.convert_to_numpy(model.pooled_features(x))
        seen.append(model.ablated_channels)
        np.testing.assert_array_equal(pooled[:, model.ablated_channels], 0.0)
        return accuracy(model, dataset)

    records = ablation_sweep(
        model,
        dataset,
        np.arange(32),
        fractions=(0.0, 0.5),
        random_draws=2,
        evaluate=evaluate,
        metric="accuracy",
    )
    assert seen[1] == list(range(16))
    assert model.ablated_channels == []
    baseline = np.mean(keras.ops.convert_to_numpy(model(x)).argmax(-1) == y)
    assert records[0]["value"] == pytest.approx(baseline)
    assert all(0 <= r["value"] <= 1 and r["metric"] == "accuracy" for r in records)


def test_accuracy_on_label_maps_is_pixel_accuracy():
    class Dense:
        def __call__(self, images, training=False):
            logits = np.zeros((1, 2, 2, 3))
            logits[0, :, :, 0] = 1.0  # predicts class 0 everywhere
            return logits

    labels = np.array([[[0, 1], [0, 0]]])
    assert accuracy(Dense(), [(np.zeros((1, 2, 2, 3)), labels)]) == 0.75
    # Classification: the fake's logits are its pooled channels; images pick the winner.
    model = FakeTask(np.stack([np.ones((8, 8)), -np.ones((8, 8))]))
    labels = np.array([0, 0, 1])
    assert accuracy(model, [(X[:3], labels)]) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"order": [0, 1, 1]}, "permutation"),
        ({"order": [0.0, 1.0]}, "permutation"),
        ({"fractions": (0.5, 1.5)}, "Received: fractions"),
        ({"fractions": ()}, "Received: fractions"),
        ({"random_draws": 0}, "Received: random_draws=0"),
        ({"evaluate": "accuracy"}, "must be callable"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"order": np.arange(20), **kwargs}
    with pytest.raises(ValueError, match=match):
        ablation_sweep(fake(), X, **args)


def test_evaluate_must_return_numbers():
    with pytest.raises(TypeError, match="float or a dict"):
        ablation_sweep(fake(), X, np.arange(20), fractions=(0.0,), evaluate=lambda m, d: "high")


def test_control_rankings_are_removed_top_first_under_their_own_selection():
    model, recorder = fake(10), Recorder()
    order, control = np.arange(10), np.arange(10)[::-1].copy()
    records = ablation_sweep(
        model, X, order, (0.0, 0.3), 2, recorder, seed=1, controls={"magnitude": control}
    )
    assert [r["selection"] for r in records[:3]] == ["ranked", "random", "magnitude"]
    removed = [sorted(channels) for channels, _ in recorder.calls]
    assert [9, 8, 7] in [sorted(c, reverse=True) for c in removed]
    magnitude = [r for r in records if r["selection"] == "magnitude"]
    assert [r["num_channels"] for r in magnitude] == [0, 3] and all(
        r["std"] == 0 for r in magnitude
    )
    with pytest.raises(ValueError, match="`controls` must be named"):
        ablation_sweep(model, X, order, (0.5,), 1, recorder, controls={"random": control})
    with pytest.raises(ValueError, match="`controls` must rank all 10"):
        ablation_sweep(model, X, order, (0.5,), 1, recorder, controls={"m": np.arange(4)})


def test_claim_fractions_get_at_least_claim_draws():
    records = ablation_sweep(
        fake(), X, np.arange(20), fractions=(0.0, 0.2, 0.5), random_draws=3,
        evaluate=Recorder(), claim_fractions=(0.5,), claim_draws=19,
    )  # fmt: skip
    draws = {r["fraction"]: r["draws"] for r in records if r["selection"] == "random"}
    assert draws == {0.0: 1, 0.2: 3, 0.5: 19}  # one empty set at 0
    values = next(r["values"] for r in records if r["fraction"] == 0.5 and "draws" in r)
    assert len(set(values)) == 19  # 19 distinct sets, each evaluated once


def test_magnitude_deciles_by_rank():
    from tfposenc.analysis.ablation_sweep import magnitude_deciles

    magnitudes = np.random.default_rng(0).permutation(20).astype(float)
    np.testing.assert_array_equal(magnitude_deciles(magnitudes), magnitudes.astype(int) // 2)
    assert np.bincount(magnitude_deciles(np.zeros(25))).tolist() == [3, 2, 3, 2, 3, 2, 3, 2, 3, 2]


def test_magnitude_matched_draws_share_the_ranked_sets_decile_profile():
    from tfposenc.analysis.ablation_sweep import magnitude_deciles, matched_draws_for

    rng = np.random.default_rng(1)
    magnitudes = rng.exponential(size=40)
    order = np.argsort(-magnitudes)  # the biggest channels first
    records = ablation_sweep(
        fake(40), X, order, fractions=(0.0, 0.25), random_draws=5, evaluate=Recorder(),
        magnitudes=magnitudes,
    )  # fmt: skip
    matched = [r for r in records if r["selection"] == "random_matched"]
    assert [r["draws"] for r in matched] == [1, 5]
    deciles = magnitude_deciles(magnitudes)
    profile = np.bincount(deciles[order[:10]], minlength=10)  # the top 10: deciles 7-9
    draws = matched_draws_for(order[:10].tolist(), magnitudes, 5, seed=0)
    assert len({tuple(d) for d in draws}) == 5
    for draw in draws:
        np.testing.assert_array_equal(np.bincount(deciles[draw], minlength=10), profile)
    assert draws == matched_draws_for(order[:10].tolist(), magnitudes, 5, seed=0)
    # Only as many distinct sets as exist: the top 12 fill deciles 7-9 exactly.
    assert len(matched_draws_for(order[:12].tolist(), magnitudes, 5, seed=0)) == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"magnitudes": np.ones(19)}, "magnitudes"),
        ({"magnitudes": [np.nan] * 20}, "magnitudes"),
        ({"claim_draws": 0}, "claim_draws"),
        ({"claim_fractions": (2.0,)}, "fractions"),
        ({"controls": {"random_matched": np.arange(20)}}, "random_matched"),
    ],
)
def test_bad_claim_and_matched_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ablation_sweep(fake(), X, np.arange(20), fractions=(0.0,), **kwargs)
