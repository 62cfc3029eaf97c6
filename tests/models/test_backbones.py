import keras
import numpy as np
import pytest

from tests.harness import loss_and_gradients
from tfposenc.layers import CONV_PADDING_MODES
from tfposenc.models import NiNBackbone, ResNetBackbone


def count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.mark.parametrize("depth, expected", [(18, 11_176_512), (34, 21_284_672), (50, 23_508_032)])
def test_trainable_weights_match_torchvision(depth, expected):
    # torchvision resnet{18,34,50} minus the final fc layer.
    assert count(ResNetBackbone(depth=depth, stem="paper").trainable_weights) == expected


def conv_out(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


def pytorch_sizes(size, stem):
    """Stage output sizes of torchvision's ResNet with the given stem."""
    if stem == "cifar":
        stem_size = size
    else:
        stem_size = conv_out(size, 7, 2, 3)
        if stem == "imagenet":
            stem_size = conv_out(stem_size, 3, 2, 1)
    sizes = {"stem": stem_size, "stage1": stem_size}
    for stage in (2, 3, 4):
        sizes[f"stage{stage}"] = conv_out(sizes[f"stage{stage - 1}"], 3, 2, 1)
    return sizes


@pytest.mark.parametrize("stem", ["paper", "imagenet", "cifar"])
@pytest.mark.parametrize("downsampling", ["stride", "blur"])
@pytest.mark.parametrize("depth", [18, 50])
def test_stage_sizes_match_pytorch(stem, downsampling, depth):
    extractor = ResNetBackbone(depth=depth, stem=stem, width=2, downsampling=downsampling)
    extractor = extractor.feature_extractor()
    for size in (32, 96, 224):
        shapes = extractor.compute_output_spec(keras.KerasTensor((1, size, size, 3)))
        got = {name: tensor.shape[1] for name, tensor in shapes.items()}
        assert got == pytorch_sizes(size, stem), (size, got)


def assert_finite_with_gradients(backbone, size=32):
    x = np.random.default_rng(1).normal(size=(2, size, size, 3)).astype("float32")
    y, grads = loss_and_gradients(backbone, x)
    assert np.all(np.isfinite(y))
    missing = [w.path for w, g in zip(backbone.trainable_weights, grads) if g is None]
    assert not missing
    assert all(np.all(np.isfinite(g)) for g in grads)


@pytest.mark.parametrize("mode", CONV_PADDING_MODES)
@pytest.mark.parametrize("downsampling", ["stride", "blur"])
@pytest.mark.parametrize("stem", ["paper", "imagenet", "cifar"])
def test_resnet18_every_mode_builds_and_trains(mode, downsampling, stem):
    size = 64 if stem == "imagenet" else 32
    if mode == "valid":
        size = 512 if stem == "imagenet" else 224  # unpadded 3x3 convs eat two pixels
    backbone = ResNetBackbone(18, stem, width=2, padding_mode=mode, downsampling=downsampling)
    assert backbone.output_channels == 16
    assert_finite_with_gradients(backbone, size)


@pytest.mark.parametrize("depth", [34, 50])
@pytest.mark.parametrize("mode, downsampling", [("zero", "stride"), ("circular", "blur")])
def test_deeper_resnets_build_and_train(depth, mode, downsampling):
    backbone = ResNetBackbone(depth, "paper", width=2, padding_mode=mode, downsampling=downsampling)
    assert backbone.output_channels == (64 if depth == 50 else 16)
    assert_finite_with_gradients(backbone)


@pytest.mark.parametrize("mode", CONV_PADDING_MODES)
@pytest.mark.parametrize("downsampling", ["stride", "blur"])
def test_nin_every_mode_builds_and_trains(mode, downsampling):
    backbone = NiNBackbone(padding_mode=mode, width=12, downsampling=downsampling, dropout=0.0)
    assert backbone.output_channels == 12
    assert_finite_with_gradients(backbone)
    assert backbone.stage_names == ["block1", "block2", "block3"]


def test_nin_stage_sizes():
    extractor = NiNBackbone(width=6).feature_extractor()
    shapes = extractor.compute_output_spec(keras.KerasTensor((1, 32, 32, 3)))
    assert {k: v.shape[1] for k, v in shapes.items()} == {"block1": 16, "block2": 8, "block3": 8}


def test_backbone_config_round_trip():
    for backbone in (
        ResNetBackbone(depth=18, stem="cifar", width=2, padding_mode="reflect"),
        NiNBackbone(width=6, padding_mode="partial", dropout=0.2),
    ):
        config = backbone.get_config()
        clone = type(backbone).from_config(config)
        assert clone.get_config() == config
        assert count(clone.weights) == count(backbone.weights)


def test_feature_extractor_rejects_unknown_stage():
    with pytest.raises(ValueError, match="stages"):
        ResNetBackbone(width=2).feature_extractor(["stage9"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"depth": 20}, "Received: depth=20"),
        ({"stem": "tiny"}, "Received: stem='tiny'"),
        ({"width": 0}, "Received: width=0"),
        ({"padding_mode": "mirror"}, "Received: padding_mode='mirror'"),
        ({"downsampling": "avg"}, "Received: downsampling='avg'"),
        ({"blur_filter_size": 9}, "Received: filter_size=9"),
        ({"input_shape": (32, 32)}, "input_shape"),
    ],
)
def test_resnet_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResNetBackbone(**kwargs)


def test_nin_bad_arguments():
    with pytest.raises(ValueError, match="Received: width=0"):
        NiNBackbone(width=0)
    with pytest.raises(ValueError, match="Received: dropout=1.5"):
        NiNBackbone(dropout=1.5)
