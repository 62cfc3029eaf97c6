import time

import keras
import numpy as np
import pytest

from tests.convert.models import ARCHITECTURES, SIZE, application
from tfposenc.convert import convert_model
from tfposenc.layers import AdaptivePolyphaseSampling2D, BlurPool2D, Padding2D
from tfposenc.models import NiNBackbone, ResNetBackbone
from tfposenc.vocabulary import PADDING_MODES

NP_MODES = {"zero": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def images(batch=2, size=SIZE, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, size, size, 3)).astype("float32")


def run(model, x):
    return np.asarray(keras.ops.convert_to_numpy(model(x, training=False)), "float64")


def relative_gap(a, b):
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))


def conv_oracle(x, kernel, bias, pads, stride, mode):
    """np.pad with `mode`, then a valid strided convolution, in float64."""
    padded = np.pad(x.astype("float64"), ((0, 0), *pads, (0, 0)), mode=NP_MODES[mode])
    kh, kw = kernel.shape[:2]
    rows = (padded.shape[1] - kh) // stride + 1
    cols = (padded.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], rows, cols, kernel.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            window = padded[
                :,
                i : i + stride * (rows - 1) + 1 : stride,
                j : j + stride * (cols - 1) + 1 : stride,
            ]
            out += window @ kernel[i, j].astype("float64")
    return out + (0 if bias is None else bias)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_zero_stride_is_identity_with_the_weights_copied(name):
    model = application(name)
    start = time.perf_counter()
    converted, changes = convert_model(model, "zero", "stride")
    elapsed = time.perf_counter() - start
    assert changes == []
    assert elapsed < 10
    assert [layer.name for layer in converted.layers] == [layer.name for layer in model.layers]
    x = images()
    assert np.abs(run(converted, x) - run(model, x)).max() <= 1e-5
    for old, new in zip(model.weights, converted.weights):
        assert new is not old
        np.testing.assert_array_equal(np.asarray(new), np.asarray(old))
    # Copied, not re-initialised: a random re-initialisation would differ here.
    kernel = next(w for w in model.weights if len(w.shape) == 4)
    assert np.abs(np.asarray(kernel)).sum() > 0


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize(
    "name, layer, pads, stride",
    [
        # ZeroPadding2D(3) in front of a valid 7x7 stride-2 conv.
        ("ResNet50", "conv1_conv", ((3, 3), (3, 3)), 2),
        # A 'same' 3x3 stride-2 conv on 64: TensorFlow pads only the bottom/right.
        ("MobileNetV2", "Conv1", ((0, 1), (0, 1)), 2),
    ],
)
def test_first_padded_conv_matches_numpy_pad_then_conv(name, layer, pads, stride, mode):
    model = application(name)
    converted, changes = convert_model(model, mode, "stride")
    assert bool(changes) == (mode != "zero")
    probe = keras.Model(converted.input, converted.get_layer(layer).output)
    x = images()
    weights = model.get_layer(layer).get_weights()
    bias = weights[1] if len(weights) > 1 else None
    expected = conv_oracle(x, weights[0], bias, pads, stride, mode)
    np.testing.assert_allclose(run(probe, x), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["ResNet50", "MobileNetV2"])
def test_circular_aps_pooled_features_are_invariant_to_circular_shifts(name):
    model = application(name)
    aps, changes = convert_model(model, "circular", "aps")
    stride, _ = convert_model(model, "circular", "stride")
    assert any(isinstance(layer, AdaptivePolyphaseSampling2D) for layer in aps.layers)
    x = images()
    reference, strided = run(aps, x), run(stride, x)
    for offset in [(1, 0), (0, 3), (5, 13), (31, 62)]:
        shifted = np.roll(x, offset, axis=(1, 2))
        assert relative_gap(reference, run(aps, shifted)) <= 1e-4, offset
    assert relative_gap(strided, run(stride, np.roll(x, (1, 3), axis=(1, 2)))) > 1e-3


def test_aps_shares_the_main_branch_index_with_the_shortcut():
    converted, changes = convert_model(application("ResNet50"), "circular", "aps")
    reports = dict((name, after) for name, _, after in changes)
    assert "conv3_block1_1_relu_aps" in reports
    assert (
        "'conv3_block1_1_relu', its index shared with 'conv3_block1_0_conv'"
        in (reports["conv3_block1_1_relu_aps"])
    )
    assert converted.get_layer("conv3_block1_0_conv").strides == (1, 1)


def test_blur_inserts_blurpool_where_zhangs_recipe_says():
    model = application("ResNet50")
    converted, changes = convert_model(model, "zero", "blur")
    inserted = {name for name, before, _ in changes if before == "-"}
    expected = {"conv1_relu_blur", "pool1_pool_blur"}
    for stage in (3, 4, 5):
        # Main branch: conv 1x1 stride 2, BN, ReLU -> blur after the ReLU; the
        # projection shortcut (conv then BN, no activation) -> blur after the conv.
        expected |= {f"conv{stage}_block1_1_relu_blur", f"conv{stage}_block1_0_conv_blur"}
    assert inserted == expected
    for name in expected:
        assert isinstance(converted.get_layer(name), BlurPool2D)
    strided = [layer.name for layer in converted.layers if getattr(layer, "strides", 1) == (2, 2)]
    assert strided == []
    assert np.isfinite(run(converted, images())).all()


def test_blur_turns_average_pools_into_blurpool():
    model = application("DenseNet121")
    converted, changes = convert_model(model, "reflect", "blur")
    for name in ("pool2_pool", "pool3_pool", "pool4_pool"):
        assert isinstance(converted.get_layer(name), BlurPool2D)
        assert (name, "AveragePooling2D(2x2, strides=2, 'valid')") == next(
            (n, b) for n, b, _ in changes if n == name
        )
    assert isinstance(converted.get_layer("zero_padding2d"), Padding2D)
    assert isinstance(converted.get_layer("pool1_blur"), BlurPool2D)
    assert np.isfinite(run(converted, images())).all()


def test_project_backbones_convert_to_backbones():
    keras.utils.set_random_seed(0)
    backbone = ResNetBackbone(depth=18, stem="imagenet", width=8, input_shape=(64, 64, 3))
    same, changes = convert_model(backbone)
    x = images()
    assert changes == [] and same.stage_names == backbone.stage_names
    assert np.abs(run(same, x) - run(backbone, x)).max() <= 1e-5
    aps, changes = convert_model(backbone, "circular", "aps")
    assert aps.stage_names == backbone.stage_names and aps.padding_mode == "circular"
    pooled = run(aps, x).mean(axis=(1, 2))
    shifted = run(aps, np.roll(x, (7, 21), axis=(1, 2))).mean(axis=(1, 2))
    assert relative_gap(pooled, shifted) <= 1e-4
    nin = NiNBackbone(width=16, input_shape=(32, 32, 3))
    converted, changes = convert_model(nin, "replicate", "blur")
    assert changes and np.isfinite(run(converted, images(size=32))).all()
    assert (
        np.abs(run(convert_model(nin)[0], images(size=32)) - run(nin, images(size=32))).max()
        <= 1e-5
    )


class PaddedBlock(keras.layers.Layer):
    """A custom layer that pads inside: the converter cannot see its border."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(4, 3, padding="same")

    def call(self, x):
        return self.conv(x)


def small_model(layer, size=8):
    inputs = keras.Input((size, size, 3))
    return keras.Model(inputs, layer(inputs))


@pytest.mark.parametrize(
    "build, padding_mode, downsampling, match",
    [
        (lambda: small_model(PaddedBlock(name="custom_pad")), "circular", "stride", "'custom_pad'"),
        (
            lambda: small_model(keras.layers.Conv2D(2, 3, strides=3, name="s3")),
            "zero",
            "aps",
            "'s3'.*strides=3",
        ),
        (
            lambda: small_model(keras.layers.Conv2D(2, 3, strides=(2, 1), name="s21")),
            "zero",
            "blur",
            "'s21'",
        ),
        (
            lambda: small_model(keras.layers.AveragePooling2D(2, name="odd"), size=7),
            "zero",
            "blur",
            "'odd'",
        ),
        (
            lambda: small_model(
                keras.layers.Conv2D(2, 3, strides=2, padding="same", name="open"), size=None
            ),
            "circular",
            "stride",
            "'open'.*unknown",
        ),
    ],
)
def test_what_cannot_be_converted_raises_naming_the_layer(build, padding_mode, downsampling, match):
    with pytest.raises(ValueError, match=match):
        convert_model(build(), padding_mode, downsampling)


def test_a_custom_layer_without_padding_is_copied():
    model = small_model(PaddedBlock(name="custom_pad"))
    converted, changes = convert_model(model)  # zero/stride: a plain copy
    x = images(size=8)
    np.testing.assert_allclose(run(converted, x), run(model, x), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"padding_mode": "partial"}, "padding_mode"),
        ({"downsampling": "pool"}, "Received: downsampling='pool'"),
        ({"blur_filter_size": 9}, "Received: blur_filter_size=9"),
        ({"blur_padding_mode": "valid"}, "blur_padding_mode"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        convert_model(small_model(keras.layers.Conv2D(2, 3)), **kwargs)
    with pytest.raises(ValueError, match="functional Keras model"):
        convert_model("model")


def residual_classifier(classes=4):
    """conv (stride 2), BN, ReLU; a residual block with a strided projection; dense."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="stem")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    y = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="main")(x)
    y = keras.layers.ReLU()(keras.layers.BatchNormalization()(y))
    shortcut = keras.layers.Conv2D(8, 1, strides=2, name="shortcut")(x)
    x = keras.layers.Add()([y, shortcut])
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes)(x))


def check_trains_saves_loads_and_exports(model, path):
    from tfposenc.export import export_saved_model

    converted, _ = convert_model(model, "circular", "aps")
    converted.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    x, y = images(4, 32), np.array([0, 1, 2, 3])
    history = converted.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    converted.save(path / "converted.keras")
    loaded = keras.saving.load_model(path / "converted.keras")
    np.testing.assert_allclose(run(loaded, x), run(converted, x), atol=1e-5)
    exported = export_saved_model(loaded, str(path / "export"), image_shape=(32, 32))
    assert (path / "export" / "1" / "saved_model.pb").exists() and exported.endswith("1")


def test_converted_model_trains_saves_loads_and_exports(tmp_path):
    keras.utils.set_random_seed(0)
    check_trains_saves_loads_and_exports(residual_classifier(), tmp_path)


@pytest.mark.slow
def test_converted_mobilenet_trains_saves_loads_and_exports(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(
        weights=None, alpha=0.35, input_shape=(32, 32, 3), classes=4, classifier_activation=None
    )
    check_trains_saves_loads_and_exports(model, tmp_path)


def test_keras_hub_resnet_backbone():
    keras_hub = pytest.importorskip(
        "keras_hub", reason="keras-hub is not installed (pip install tfposenc[hub])"
    )
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[8],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[8, 16],
        stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2],
        block_type="basic_block",
        image_shape=(32, 32, 3),
    )
    x = images(size=32)
    same, _ = convert_model(backbone)
    np.testing.assert_allclose(run(same, x), run(backbone, x), atol=1e-5)
    converted, changes = convert_model(backbone, "circular", "blur")
    assert changes and np.isfinite(run(converted, x)).all()
