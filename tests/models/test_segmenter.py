import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfposenc.data import load, make_segmentation
from tfposenc.models import GAPNet, NiNBackbone, ResNetBackbone, Segmenter
from tfposenc.models.segmenter import bilinear_matrix, upsample_bilinear


def tiny(**kwargs):
    return ResNetBackbone(**{"depth": 18, "stem": "cifar", "width": 4, **kwargs})


def make(**kwargs):
    model = Segmenter(tiny(), 11, head_channels=8, **kwargs)
    model.jit_compile = False
    return model


def canvases(n=8):
    dataset = make_segmentation(load("digits", "train"), grid_size=2, cell_size=16)
    return next(iter(dataset.batch(n)))


@pytest.mark.parametrize("size", [(5, 7, 20, 28), (5, 7, 17, 9), (4, 4, 4, 4), (6, 6, 3, 2)])
def test_upsampling_matches_tf_image_resize(size):
    h, w, height, width = size
    maps = np.random.default_rng(0).normal(size=(2, h, w, 3)).astype("float32")
    expected = tf.image.resize(maps, (height, width), method="bilinear").numpy()
    result = keras.ops.convert_to_numpy(upsample_bilinear(maps, height, width))
    np.testing.assert_allclose(result, expected, atol=1e-5)
    rows = keras.ops.convert_to_numpy(bilinear_matrix(height, h))
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize(
    "build, shape",
    [
        (tiny, (2, 32, 32, 3)),
        (lambda: tiny(stem="paper"), (1, 48, 40, 3)),
        (lambda: tiny(stem="paper", output_stride=8), (1, 32, 32, 3)),
        (lambda: NiNBackbone(width=8, dropout=0.0), (1, 32, 32, 3)),
    ],
)
def test_logits_have_the_input_size_for_any_backbone(build, shape):
    backbone = build()
    model = Segmenter(backbone, 11, head_channels=8)
    x = np.random.default_rng(0).uniform(0, 255, size=shape).astype("float32")
    assert model(x).shape == (*shape[:3], 11)
    assert model(x).dtype == "float32"
    assert model.pooled_features(x).shape == (shape[0], backbone.output_channels)


@pytest.mark.tensorflow_only
def test_dynamic_input_size_in_a_graph():
    model = make()
    call = tf.function(lambda x: model(x), input_signature=[tf.TensorSpec((None, None, None, 3))])
    assert tuple(call(tf.zeros((1, 24, 40, 3))).shape) == (1, 24, 40, 11)


def test_fit_on_canvases_lowers_the_loss_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    model = Segmenter(tiny(), 11, head_channels=8, mean=(0.3, 0.3, 0.3), std=(0.4, 0.4, 0.4))
    model.jit_compile = False
    x, y = canvases()  # raw pixels: the model normalises them
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
        run_eagerly=True,  # tracing a ResNet step costs seconds; eager steps are fast
    )
    history = model.fit(x, y, epochs=8, batch_size=8, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    path = os.path.join(tmp_path, "segmenter.keras")
    model.ablate([1, 2])
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is Segmenter
    assert loaded.get_config() == model.get_config()
    assert loaded.get_config()["num_classes"] == 11
    assert loaded.get_config()["head_channels"] == 8
    assert loaded.get_config()["mean"] == [0.3, 0.3, 0.3]
    assert loaded.ablated_channels == [1, 2]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-5
    )


def test_ablation_zeroes_pooled_channels_and_changes_logits():
    model = make()
    x, _ = canvases(2)
    before = keras.ops.convert_to_numpy(model(x))
    model.ablate([0, 3])
    pooled = keras.ops.convert_to_numpy(model.pooled_features(x))
    assert np.all(pooled[:, [0, 3]] == 0)
    assert not np.allclose(keras.ops.convert_to_numpy(model(x)), before)
    model.ablate([])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), before, rtol=1e-6)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: Segmenter(tiny(), 0), "Received: num_classes=0"),
        (lambda: Segmenter(tiny(), 11, head_channels=0), "Received: head_channels=0"),
        (lambda: Segmenter(GAPNet(tiny(), 2), 11), "Received: backbone=GAPNet"),
    ],
)
def test_bad_arguments(build, match):
    with pytest.raises(ValueError, match=match):
        build()
