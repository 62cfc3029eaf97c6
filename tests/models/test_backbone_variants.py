"""APS downsampling, output stride, blur padding that follows the border, the factory."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfposenc.metrics import shift_consistency
from tfposenc.models import BACKBONES, Classifier, ResNetBackbone, build_backbone


def np_(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("stem, depth", [("paper", 18), ("cifar", 18), ("imagenet", 50)])
def test_aps_circular_backbone_is_exactly_invariant_to_circular_shifts(stem, depth):
    keras.utils.set_random_seed(0)
    backbone = ResNetBackbone(depth, stem, 2, padding_mode="circular", downsampling="aps")
    model = Classifier(backbone, 4)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 64, 64, 3)).astype("float32")
    reference = np_(model.pooled_features(x))
    shifts = [(1, 0), (0, 3), (5, -7)] + [tuple(rng.integers(-40, 40, 2)) for _ in range(3)]
    for shift in shifts:
        shifted = np_(model.pooled_features(np.roll(x, shift, axis=(1, 2))))
        np.testing.assert_allclose(shifted, reference, atol=1e-4, err_msg=str(shift))


def test_strided_circular_backbone_is_not_invariant():
    # The control: with plain strided convs the sampling phase moves with the shift.
    keras.utils.set_random_seed(0)
    model = Classifier(ResNetBackbone(18, "cifar", 2, padding_mode="circular"), 4)
    x = np.random.default_rng(1).normal(size=(3, 32, 32, 3)).astype("float32")
    shifted = np_(model.pooled_features(np.roll(x, (1, 0), axis=(1, 2))))
    assert np.abs(shifted - np_(model.pooled_features(x))).max() > 1e-3


@pytest.mark.tensorflow_only  # shift_consistency runs a tf.function over tf.data
def test_aps_model_has_full_circular_consistency_before_training():
    keras.utils.set_random_seed(0)
    backbone = ResNetBackbone(18, "cifar", 2, padding_mode="circular", downsampling="aps")
    model = Classifier(backbone, 10)
    x = np.random.default_rng(2).uniform(0, 255, size=(48, 32, 32, 3)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, np.zeros(48, "int64"))).batch(16)
    result = shift_consistency(model, data, max_shift=16, mode="circular", passes=2)
    assert result["consistency"] == 100.0


def test_aps_backbone_round_trips_through_keras_file(tmp_path):
    backbone = ResNetBackbone(18, "paper", 2, padding_mode="circular", downsampling="aps")
    model = Classifier(backbone, 3, mean=[0.5] * 3, std=[0.25] * 3)
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    path = str(tmp_path / "aps.keras")
    model.save(path)
    revived = keras.saving.load_model(path)
    np.testing.assert_allclose(np_(revived(x)), np_(model(x)), atol=1e-5)
    assert revived.backbone.downsampling == "aps" and revived.mean == model.mean


@pytest.mark.parametrize(
    "stem, output_stride, size",
    [("paper", 8, 64), ("paper", 16, 64), ("imagenet", 16, 64), ("imagenet", 8, 64)],
)
def test_output_stride_dilates_the_last_stages(stem, output_stride, size):
    backbone = ResNetBackbone(18, stem, 2, output_stride=output_stride)
    assert backbone(np.zeros((1, size, size, 3))).shape[1] == size // output_stride
    dilations = {
        layer.name: layer.dilation_rate
        for layer in backbone.layers
        if hasattr(layer, "dilation_rate") and layer.kernel_size == (3, 3)
    }
    natural = {"paper": 16, "imagenet": 32}[stem]
    if output_stride < natural:
        assert dilations["stage4_block2_conv1"] == (natural // output_stride,) * 2
        # The first conv of the first dilated block keeps the previous rate (torchvision).
        assert dilations["stage4_block1_conv1"] == (natural // output_stride // 2,) * 2
    with pytest.raises(ValueError, match="Received: output_stride=3"):
        ResNetBackbone(18, stem, 2, output_stride=3)


def test_blur_padding_follows_circular_padding():
    backbone = ResNetBackbone(18, "cifar", 2, padding_mode="circular", downsampling="blur")
    assert backbone.blur_padding_mode is None
    blur_modes = {layer.padding_mode for layer in backbone.layers if "blur" in layer.name}
    assert blur_modes == {"circular"}
    features = backbone.feature_extractor()(np.full((1, 32, 32, 3), 0.7, "float32"))
    for name, value in features.items():
        value = np_(value)  # constant maps up to float32 summation order
        assert np.std(value, axis=(1, 2)).max() <= 1e-5 * (1 + np.abs(value).max()), name
    explicit = ResNetBackbone(
        18, "cifar", 2, padding_mode="zero", downsampling="blur", blur_padding_mode="reflect"
    )
    assert {layer.padding_mode for layer in explicit.layers if "blur" in layer.name} == {"reflect"}


def test_build_backbone_names_and_errors():
    for name in BACKBONES:
        backbone = build_backbone(name, width=4, input_shape=(32, 32, 3))
        assert backbone(np.zeros((1, 32, 32, 3))).shape[-1] == backbone.output_channels
    assert build_backbone("resnet34", width=2).depth == 34
    with pytest.raises(ValueError, match=r"`name` must be one of .*resnet18.*Received: name='vgg'"):
        build_backbone("vgg")
    with pytest.raises(ValueError, match=r"`stem` must be one of .*paper.*Received: stem='tiny'"):
        build_backbone("resnet18", stem="tiny")
