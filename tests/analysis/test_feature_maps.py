import keras
import numpy as np
import pytest
from matplotlib.figure import Figure

from tfposenc.analysis import border_artifact_scores, feature_maps, plot_feature_maps
from tfposenc.layers import PaddedConv2D
from tfposenc.models import Backbone, GAPNet, ResNetBackbone


def tiny(**kwargs):
    return ResNetBackbone(stem="cifar", width=4, **kwargs)


def test_feature_maps_of_a_backbone_and_of_its_task_agree():
    keras.utils.set_random_seed(0)
    backbone = tiny()
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    maps = feature_maps(backbone, x)
    assert list(maps) == ["stem", "stage1", "stage2", "stage3", "stage4"]
    assert maps["stem"].shape == (2, 32, 32, 4) and maps["stage4"].shape == (2, 4, 4, 32)
    np.testing.assert_allclose(
        maps["stage4"], keras.ops.convert_to_numpy(backbone(x, training=False)), rtol=1e-5
    )
    from_task = feature_maps(GAPNet(backbone, 4), x, ["stage2", "stem"])
    assert list(from_task) == ["stage2", "stem"]
    np.testing.assert_allclose(from_task["stage2"], maps["stage2"], rtol=1e-5)
    # A task that normalises raw pixels applies its own preprocessing first.
    task = GAPNet(backbone, 4, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    raw = 255 * x
    normalised = (x - 0.5) / 0.25
    np.testing.assert_allclose(
        feature_maps(task, raw, ["stage1"])["stage1"],
        feature_maps(backbone, normalised, ["stage1"])["stage1"],
        rtol=1e-4,
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="stages"):
        feature_maps(backbone, x, ["stage9"])
    with pytest.raises(ValueError, match="Received: model_or_backbone=Dense"):
        feature_maps(keras.layers.Dense(2), x)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"padding_mode": "circular"},
        {"padding_mode": "circular", "stem": "paper"},
        {"padding_mode": "circular", "downsampling": "blur", "blur_padding_mode": "circular"},
    ],
)
def test_circular_padding_keeps_a_constant_input_constant_at_every_stage(kwargs):
    keras.utils.set_random_seed(1)
    backbone = ResNetBackbone(**{"stem": "cifar", "width": 4, **kwargs})
    # Non-trivial batch-norm statistics, so every stage has non-zero, varied activations.
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            rng = np.random.default_rng(len(layer.name))
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 2, gamma.shape),
                    rng.normal(size=beta.shape),
                    rng.normal(size=mean.shape),
                    rng.uniform(0.5, 2, var.shape),
                ]
            )
    x = np.full((1, 32, 32, 3), 0.7, "float32")
    for stage, values in feature_maps(backbone, x).items():
        assert np.abs(values).max() > 0, stage
        assert values.astype("float64").std(axis=(1, 2)).max() < 1e-5, stage
    for score in border_artifact_scores(backbone, (32, 32, 3), value=0.7):
        assert score["constant_input_std_max"] < 1e-5
        assert np.isnan(score["border_contrast"]) or score["border_contrast"] < 1e-5


def test_zero_padding_draws_a_border():
    keras.utils.set_random_seed(0)
    scores = border_artifact_scores(tiny(padding_mode="zero"), (32, 32, 3))
    assert [s["stage"] for s in scores] == ["stem", "stage1", "stage2", "stage3", "stage4"]
    assert all(s["constant_input_std"] > 1e-3 and s["border_contrast"] > 1e-3 for s in scores)


def test_border_artifact_scores_by_hand():
    # A 3x3 all-ones kernel with zero padding on a constant 1: corners 4, edges 6, inside 9.
    inputs = keras.Input((5, 5, 1))
    conv = PaddedConv2D(1, 3, padding_mode="zero", use_bias=False, kernel_initializer="ones")
    backbone = Backbone(inputs, {"stem": conv(inputs)}, "zero")
    (score,) = border_artifact_scores(backbone, (5, 5, 1), value=1.0)
    expected = np.array(
        [[4, 6, 6, 6, 4], [6, 9, 9, 9, 6], [6, 9, 9, 9, 6], [6, 9, 9, 9, 6], [4, 6, 6, 6, 4]], float
    )
    ring = (4 * 4 + 12 * 6) / 16
    assert score["stage"] == "stem"
    assert score["constant_input_std"] == pytest.approx(expected.std())
    assert score["constant_input_std_max"] == pytest.approx(expected.std())
    assert score["border_contrast"] == pytest.approx((9 - ring) / expected.mean())
    with pytest.raises(ValueError, match="Received: input_shape"):
        border_artifact_scores(backbone, (5, 5))


def test_plot_feature_maps(tmp_path):
    maps = {"stem": np.random.rand(2, 8, 8, 6), "stage1": np.random.rand(2, 4, 4, 6)}
    figure = plot_feature_maps(maps, image=np.random.rand(2, 16, 16, 3), num_channels=3, title="t")
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 3 * 4
    assert figure.axes[4].get_title() == "stem mean|a|"
    path = tmp_path / "maps.png"
    figure.savefig(path)
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="Received: num_channels=-1"):
        plot_feature_maps(maps, num_channels=-1)
    with pytest.raises(ValueError, match="at least one stage"):
        plot_feature_maps({})


def _conv_relu_backbone(padding_mode, size=12):
    """One fixed 3x3 conv, `left - right + centre - up`, and a ReLU. On i.i.d. inputs a
    border changes the variance of the sum (reflect cancels left and right in column 0,
    replicate cancels centre and up in row 0) and so the ReLU's mean, unless the padding
    is circular."""
    inputs = keras.Input((size, size, 1))
    conv = PaddedConv2D(1, 3, padding_mode=padding_mode, use_bias=False)
    kernel = np.zeros((3, 3, 1, 1), "float32")
    kernel[1, 0], kernel[1, 2], kernel[1, 1], kernel[0, 1] = 1.0, -1.0, 1.0, -1.0
    conv.build((None, size, size, 1))
    conv.set_weights([kernel])
    return Backbone(inputs, {"stem": keras.layers.ReLU()(conv(inputs))}, padding_mode)


def test_random_input_border_gap_sees_every_padding_mode_and_circular_is_noise():
    gaps = {}
    for mode in ("zero", "reflect", "replicate", "circular"):
        backbone = _conv_relu_backbone(mode)
        (score,) = border_artifact_scores(backbone, (12, 12, 1), value=1.0, random_inputs=400)
        gaps[mode] = score
        assert score["random_inputs"] == 400
        if mode in ("reflect", "replicate", "circular"):  # blind on the constant input
            assert score["constant_input_std"] == 0.0 and score["border_contrast"] == 0.0
    for mode in ("zero", "reflect", "replicate"):
        assert gaps[mode]["random_border_gap"] > 5 * gaps[mode]["random_border_gap_se"], mode
    circular = gaps["circular"]
    assert circular["random_border_gap"] < 3 * circular["random_border_gap_se"]


def test_random_border_scores_by_hand():
    from tfposenc.analysis.border_artifacts import random_border_scores

    maps = np.zeros((2, 3, 3, 1))
    maps[0, 1, 1, 0] = 8.0  # image 0: interior 8, ring 0 -> difference -8
    maps[1] = 1.0  # image 1: difference 0
    score = random_border_scores(maps)
    scale = (8 + 9) / 18
    assert score["random_border_gap"] == pytest.approx(4 / scale)
    assert score["random_border_gap_se"] == pytest.approx(
        np.std([-8, 0], ddof=1) / np.sqrt(2) / scale
    )
    assert np.isnan(random_border_scores(np.ones((2, 2, 2, 1)))["random_border_gap"])
    with pytest.raises(ValueError, match="`random_inputs` must be an int >= 2"):
        border_artifact_scores(
            _conv_relu_backbone("zero"), (12, 12, 1), random_inputs=np.ones((3, 4))
        )
