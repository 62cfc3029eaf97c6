"""Plain Keras models wherever the library takes a model: `Backbone.from_model`."""

import keras
import numpy as np
import pytest

from tfposenc.analysis import ablation_sweep, feature_maps, rank_position_channels
from tfposenc.models import AugShift, Backbone, Classifier, GAPNet, PermuteNet


def plain_classifier(classes=3):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(inputs)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="dense")(x))


def images(batch=4):
    return np.random.default_rng(0).uniform(0, 255, (batch, 16, 16, 3)).astype("float32")


def test_from_model_takes_the_last_4d_output_or_the_named_layers():
    model = plain_classifier()
    backbone = Backbone.from_model(model)
    assert backbone.stage_names == ["conv_b"] and backbone.output_channels == 6
    assert backbone(images()).shape == (4, 8, 8, 6)
    named = Backbone.from_model(model, stages={"early": "conv_a", "late": "conv_b"})
    assert named.stage_names == ["early", "late"]
    assert set(feature_maps(named, images())) == {"early", "late"}
    assert Backbone.from_model(model, stages=["conv_a"]).output_channels == 4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"stages": ["nope"]}, "no layer 'nope'"),
        ({"stages": ["dense"]}, "4D outputs.*'dense'"),
        ({"stages": 3}, "Received: stages=3"),
        ({"padding_mode": "mirror"}, "padding_mode"),
    ],
)
def test_from_model_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Backbone.from_model(plain_classifier(), **kwargs)
    with pytest.raises(ValueError, match="functional Keras model"):
        Backbone.from_model("model")


def test_backbones_on_any_graph_save_and_load(tmp_path):
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Conv2D(5, 3, name="c")(inputs)
    direct = Backbone(inputs, {"features": features}, padding_mode="zero")
    for backbone in (direct, Backbone.from_model(plain_classifier())):
        path = tmp_path / f"{backbone.name}.keras"
        backbone.save(path)
        loaded = keras.saving.load_model(path)
        assert isinstance(loaded, Backbone) and loaded.stage_names == backbone.stage_names
        np.testing.assert_allclose(loaded(images()), backbone(images()), atol=1e-6)


def test_tasks_and_analyses_take_a_plain_model(tmp_path):
    model = plain_classifier()
    for task in (GAPNet(model, 9), PermuteNet(model, 9, seed=0), Classifier(model, 9)):
        assert task(images()).shape == (4, 9)
    classifier = Classifier(model, 9)
    path = tmp_path / "classifier.keras"
    classifier.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(images()), classifier(images()), atol=1e-5)
    order, scores = rank_position_channels(model, images())
    assert sorted(order.tolist()) == list(range(6)) and scores.shape == (6,)
    assert feature_maps(model, images())["conv_b"].shape == (4, 8, 8, 6)
    AugShift(Classifier(Backbone.from_model(model), 3), max_shift=2)


def test_what_a_plain_model_lacks_is_named():
    model = plain_classifier()
    with pytest.raises(ValueError, match=r"Classifier\(Backbone.from_model\(model\)"):
        AugShift(model)
    with pytest.raises(ValueError, match="ablate"):
        ablation_sweep(model, images(), order=list(range(6)))
