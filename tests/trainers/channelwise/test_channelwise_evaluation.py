"""Evaluation: class canvases scored per cell, held-out validation images, permutations."""

import numpy as np
import pytest
import tensorflow as tf

from tests.trainers.smoke import smoke_config
from trainers.channelwise import EXPERIMENT, evaluation
from trainers.channelwise.config import Combination


def smoke(out, **overrides):
    return smoke_config(EXPERIMENT, out, **overrides)


def test_class_canvases_keep_their_cell_and_are_scored_per_cell(tmp_path):
    import keras

    config = smoke(tmp_path, grid_sizes=(3,), tasks=("class",), test_examples=40)
    combination = Combination(3, "zero", "classifier", "class")
    data = EXPERIMENT.data(config, combination)
    from tfposenc.data import info

    fill = 255 * np.array(info("digits").mean, "float32")
    for _ in range(2):  # placements are fresh on every pass; cells stay in step with them
        batches = zip(*data.test.as_numpy_iterator(), strict=True)
        canvases, classes, cells = (np.concatenate(t) for t in batches)
        assert len(cells) == 40 * 9 and set(cells) <= set(range(9))
        for canvas, cell in zip(canvases[:60], cells[:60], strict=True):  # the digit's cell
            row, col = divmod(int(cell), 3)
            inside = np.zeros((24, 24), bool)
            inside[row * 8 : row * 8 + 8, col * 8 : col * 8 + 8] = True
            assert np.allclose(canvas[~inside], fill) and not np.allclose(canvas[inside], fill)
    test = tf.data.Dataset.from_tensor_slices((canvases, classes, cells)).batch(64)
    inputs = keras.Input((24, 24, 3))  # always answers class 0
    logits = keras.layers.Dense(10, kernel_initializer="zeros", bias_initializer="zeros")(
        keras.layers.GlobalAveragePooling2D()(inputs)
    )
    model = keras.Model(inputs, logits + np.eye(10, dtype="float32")[0])
    values = dict(evaluation.score(model, test, "classifier", 3, permutations=100, seed=0))
    assert values["permutations"] == 0 and values["permutation_std"] == 0.0
    assert values["examples"] == 360
    assert values["accuracy"] == pytest.approx(100 * np.mean(classes == 0))
    for cell in range(9):
        expected = 100 * np.mean(classes[cells == cell] == 0)
        assert values["per_cell_accuracy"][cell // 3][cell % 3] == pytest.approx(expected, abs=0.01)
        assert values["per_cell_examples"][cell // 3][cell % 3] == np.sum(cells == cell)


def test_validation_images_are_disjoint_from_the_test_and_training_images(tmp_path):
    """By digest: the learning curves (and any stopping rule) never see a test image,
    and the validation images are held out of training."""
    import hashlib

    from trainers.channelwise.data import sources

    config = smoke(tmp_path / "run", test_examples=100, validation_examples=60)

    def digests(dataset):
        return [hashlib.sha256(np.asarray(x).tobytes()).hexdigest() for x, _ in dataset]

    train, validation, test = (digests(d) for d in sources(config))
    assert len(validation) == 60 and len(test) == 100 and len(train) > 1000
    assert not set(validation) & set(test)
    assert not set(validation) & set(train)


def test_permutenet_is_scored_under_the_asked_number_of_distinct_permutations(monkeypatch):
    import keras

    from tfposenc.models import PermuteNet, ResNetBackbone

    keras.utils.set_random_seed(0)
    model = PermuteNet(ResNetBackbone(18, "cifar", 2), 4, seed=0, readout_init="torch")
    rng = np.random.default_rng(0)
    canvases = rng.uniform(0, 255, (12, 16, 16, 3)).astype("float32")
    cells = rng.integers(0, 4, 12)
    test = tf.data.Dataset.from_tensor_slices((canvases, cells)).batch(5)
    used = []
    original = evaluation.permuted_logits

    def spy(pooled, kernel, bias, permutation):
        used.append(tuple(permutation))
        return original(pooled, kernel, bias, permutation)

    monkeypatch.setattr(evaluation, "permuted_logits", spy)
    for asked in (1, 7, 150):
        used.clear()
        values = dict(evaluation.score(model, test, "permutenet", 2, asked, seed=3))
        assert len(used) == len(set(used)) == asked == values["permutations"]
        assert values["examples"] == 12 and (values["permutation_std"] > 0) == (asked > 1)
    # The numpy read-out is the model's own call with that permutation pinned.
    pooled = np.asarray(model.pooled_features(canvases))
    kernel, bias = model.dense.get_weights()
    for permutation in evaluation.draw_permutations(pooled.shape[1], 3, seed=1):
        model.shuffle.sample_permutation = lambda c, p=permutation: p
        np.testing.assert_allclose(
            np.asarray(model(canvases)),
            np.asarray(original(pooled, kernel, bias, permutation)),
            rtol=1e-4,
            atol=1e-5,
        )
    np.testing.assert_allclose(
        np.asarray(model.expected_logits(pooled)),
        np.asarray(evaluation.expected_logits(pooled, kernel, bias)),
        rtol=1e-5,
        atol=1e-6,
    )
    assert len(evaluation.draw_permutations(3, 100, seed=0)) == 6  # 3! at most


@pytest.mark.parametrize("channels", [171, 192, 512])
def test_permutations_are_counted_for_the_paper_widths(channels):
    """171! overflows a float: 512 channels (ResNet-18 width 64) and NiN's 192 used to
    raise OverflowError at the end of the first epoch."""
    drawn = evaluation.draw_permutations(channels, 100, seed=0)
    assert drawn.shape == (100, channels)
    assert len({p.tobytes() for p in drawn}) == 100
    assert all(np.array_equal(np.sort(p), np.arange(channels)) for p in drawn)
    assert len(evaluation.draw_permutations(4, 100, seed=0)) == 24  # 4! at most
    assert len(evaluation.draw_permutations(20, 5, seed=0)) == 5


def test_library_readout_on_pooled_features_matches_numpy():
    """`permuted_logits` / `expected_logits` (tfposenc.models.permute_net) against numpy:
    the shuffle is `out[c] = in[perm[c]]`, and the mean over every permutation of 3
    channels is the expected logits."""
    import itertools

    from tfposenc.models.permute_net import expected_logits, permuted_logits

    rng = np.random.default_rng(0)
    pooled = rng.normal(size=(5, 3)).astype("float32")
    kernel = rng.normal(size=(3, 4)).astype("float32")
    bias = rng.normal(size=4).astype("float32")
    permutation = np.array([2, 0, 1])
    by_hand = np.stack([pooled[:, 2], pooled[:, 0], pooled[:, 1]], 1) @ kernel + bias
    np.testing.assert_allclose(
        np.asarray(permuted_logits(pooled, kernel, bias, permutation)), by_hand, rtol=1e-5
    )
    every = [
        np.asarray(permuted_logits(pooled, kernel, bias, np.array(p)))
        for p in itertools.permutations(range(3))
    ]
    np.testing.assert_allclose(
        np.asarray(expected_logits(pooled, kernel, bias)), np.mean(every, 0), rtol=1e-5
    )
