import keras
import numpy as np
import pytest
from keras import ops

from tfposenc.analysis import position_probe
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
        ({"labels": np.zeros(3)}, "one class per image"),
    ],
)
def test_bad_arguments(kwargs, match):
    images, _ = digits(10)
    with pytest.raises(ValueError, match=match):
        position_probe(planted_model(), images, **kwargs)
    with pytest.raises(ValueError, match="functional Keras model"):
        position_probe("model", images)
