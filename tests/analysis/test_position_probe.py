import warnings

import keras
import numpy as np
import pytest
from keras import ops

from tfposenc.analysis import ablation_curve, label_scores, order_by_score, position_probe
from tfposenc.data import load_digits_arrays
from tfposenc.models import ResNetBackbone

SIZE = 48  # 3 x 3 cells of 16 px


class PlantedChannels(keras.layers.Layer):
    """Channels 0 and 1 weight the intensity by a horizontal and a vertical ramp (their
    pooled values are the content's x and y, times its mass); the others hold no
    position: the intensity, its square, and the intensity times a pattern repeating
    with the 16-px cell, which is the same in every cell."""

    def call(self, images):
        intensity = ops.mean(images, axis=-1) / 255.0
        ramp = ops.linspace(0.0, 1.0, SIZE)
        periodic = ops.cos(ops.arange(SIZE, dtype="float32") * (2 * np.pi / 16)) + 1.0
        channels = [
            intensity * ramp[None, None, :],
            intensity * ramp[None, :, None],
            intensity,
            intensity**2,
            intensity * periodic[None, :, None] * periodic[None, None, :],
        ]
        return ops.stack(channels, axis=-1)


def planted_model():
    inputs = keras.Input((SIZE, SIZE, 3))
    features = keras.layers.AveragePooling2D(8)(PlantedChannels()(inputs))  # 6 x 6 maps
    return keras.Model(inputs, features)  # a plain Keras model, not a tfposenc Backbone


def digits(count):
    images, labels = load_digits_arrays("train")
    return images[:count], labels[:count]


def test_planted_position_channels_rank_first_and_read_out():
    images, labels = digits(200)
    result = position_probe(
        planted_model(),
        images,
        labels,
        grid_size=3,
        readouts=("classifier", "permutenet", "gapnet"),
        steps=400,
        learning_rate=1e-2,
    )
    assert set(result["ranking"]["order"][:2]) == {0, 1}
    assert result["chance"] == {"location": pytest.approx(1 / 9), "class": pytest.approx(0.1)}
    location = {name: scores["location"] for name, scores in result["readouts"].items()}
    assert location["classifier"] >= 0.95
    assert location["permutenet"] < location["classifier"]
    assert result["readouts"]["classifier"]["class"] is not None
    # Removing the two position channels (2 of 5 = 40 %) destroys the location read-out.
    assert result["halving_fraction"] is not None and result["halving_fraction"] <= 0.4
    assert result["ablation"][0]["fraction"] == 0.0
    assert result["num_channels"] == 5 and result["cell_size"] == 16


def tiny_backbone():
    inputs = keras.Input((24, 24, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(32, 3, padding="same")(x))


@pytest.mark.parametrize(
    "build",
    [
        tiny_backbone,
        pytest.param(
            lambda: ResNetBackbone(depth=18, stem="cifar", width=4, input_shape=(24, 24, 3)),
            marks=pytest.mark.slow,
        ),
    ],
)
def test_fine_tuned_probe(build):
    keras.utils.set_random_seed(0)
    backbone = build()
    images, _ = digits(20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = position_probe(
            backbone,
            images,
            grid_size=3,
            readouts=("classifier", "gapnet"),
            steps=2,
            batch_size=16,
            frozen=False,
            fractions=(0.5,),
        )
    # The test canvases' length is told to Keras (it warned on every read-out before).
    assert not [w for w in caught if "ran out of data" in str(w.message)]
    assert set(result["readouts"]) == {"classifier", "gapnet"}
    for scores in result["readouts"].values():
        assert 0.0 <= scores["location"] <= 1.0 and scores["class"] is None
    assert sorted(result["ranking"]["order"]) == list(range(32))
    assert [a["fraction"] for a in result["ablation"]] == [0.0, 0.5]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"grid_size": 5}, "`grid_size` must divide the backbone's input size 48"),
        ({"readouts": ("sortnet",)}, "readouts"),
        ({"steps": 0}, "Received: steps=0"),
        ({"ranking_method": "mean"}, "ranking_method"),
        ({"ranking_method": "flip"}, "ranking_method"),
        ({"eval_batch_size": 0}, "eval_batch_size"),
        ({"labels": np.zeros(3)}, "one class per image"),
        ({"labels": np.arange(10), "num_classes": 5}, r"labels. must be in \[0, num_classes=5\)"),
    ],
)
def test_bad_arguments(kwargs, match):
    images, _ = digits(10)
    with pytest.raises(ValueError, match=match):
        position_probe(planted_model(), images, **kwargs)
    with pytest.raises(ValueError, match="functional Keras model"):
        position_probe("model", images)


def test_a_one_channel_backbone_names_its_channel_count():
    inputs = keras.Input((SIZE, SIZE, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, strides=8)(inputs))
    images, _ = digits(8)  # RGB
    with pytest.raises(ValueError, match=r"must have 1 channel \(the backbone takes 1\)"):
        position_probe(model, images)


def eta_squared(column, labels):
    """An independent oracle: 1 - within-group sum of squares / total sum of squares."""
    total = np.sum((column - column.mean()) ** 2)
    within = sum(
        np.sum((column[labels == g] - column[labels == g].mean()) ** 2) for g in set(labels)
    )
    return 1.0 - within / total


def test_label_scores_are_eta_squared():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 5)
    features = np.stack(
        [labels * 1.0, rng.normal(size=20), labels + rng.normal(size=20), np.full(20, 3.0)], 1
    )
    scores = label_scores(features, labels)
    for c in range(3):
        assert scores[c] == pytest.approx(eta_squared(features[:, c], labels))
    assert scores[0] == pytest.approx(1.0) and scores[3] == 0.0  # constant: 0
    assert order_by_score(scores).tolist() == [0, 2, 1, 3]
    assert order_by_score([1.0, 2.0, 2.0]).tolist() == [1, 2, 0]  # ties by index
    with pytest.raises(ValueError, match="one integer label per row"):
        label_scores(features, labels[:3])
    with pytest.raises(ValueError, match=r"Received: features of shape \(20,\)"):
        label_scores(features[:, 0], labels)


def test_ablation_curve_zeroes_the_top_ranked_channels():
    features = np.array([[1.0, 2.0, 4.0, 8.0]] * 3)
    curve, halving = ablation_curve(features, [3, 2, 1, 0], (0.5, 0.25), lambda x: x[0].sum())
    # Hand-computed: all 15; without channel 3 (25 %): 7; without 3 and 2 (50 %): 3.
    assert curve == [
        {"fraction": 0.0, "num_channels": 0, "score": 15.0},
        {"fraction": 0.25, "num_channels": 1, "score": 7.0},
        {"fraction": 0.5, "num_channels": 2, "score": 3.0},
    ]
    assert halving == 0.25
    assert features[0, 3] == 8.0  # the caller's array is not changed
    _, never = ablation_curve(features, [0, 1, 2, 3], (0.25,), lambda x: x[0].sum())
    assert never is None  # 15 -> 14
    with pytest.raises(ValueError, match="permutation"):
        ablation_curve(features, [0, 0, 1, 2], (0.5,), sum)
    with pytest.raises(ValueError, match="C = 3"):
        ablation_curve(features, [0, 1, 2], (0.5,), sum)
