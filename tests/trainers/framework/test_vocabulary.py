"""Every name a trainer's command line offers builds what it names.

The configs take their choices from the library's vocabulary (`tfposenc.vocabulary`);
this checks each offered name against the code that must accept it (a layer, a
backbone, a data source, a ranking, a network), not against another copy of a list.
"""

import dataclasses

import numpy as np
import pytest

from tfposenc import vocabulary
from trainers.attack.config import AttackConfig
from trainers.channelwise import EXPERIMENT as CHANNELWISE
from trainers.channelwise.config import ChannelwiseConfig, Combination
from trainers.shift_invariance.config import ShiftInvarianceConfig


def offered(config_class):
    """`{field: choices}` of a config's fields with choices."""
    return {
        f.name: tuple(f.metadata["choices"])
        for f in dataclasses.fields(config_class)
        if f.metadata.get("choices") is not None
    }


def test_every_offered_padding_mode_builds_a_padded_conv_and_pads():
    from tfposenc.layers import PaddedConv2D, Padding2D

    modes = set()
    for config_class in (ChannelwiseConfig, AttackConfig, ShiftInvarianceConfig):
        for name, choices in offered(config_class).items():
            if "padding_mode" in name:
                modes |= set(choices)
    assert modes  # the configs offer border modes at all
    x = np.random.default_rng(0).normal(size=(1, 6, 6, 2)).astype("float32")
    for mode in sorted(modes):
        out = np.asarray(PaddedConv2D(3, 3, padding_mode=mode)(x))
        assert np.all(np.isfinite(out)), mode
        if mode in vocabulary.PADDING_MODES:
            assert np.asarray(Padding2D(1, padding_mode=mode)(x)).shape == (1, 8, 8, 2)


def test_every_offered_backbone_and_stem_builds():
    from tfposenc.models import build_backbone

    choices = offered(ChannelwiseConfig)
    for backbone in choices["backbone"]:
        model = build_backbone(
            backbone, width=4 if backbone != "nin" else 12, input_shape=(32, 32, 3)
        )
        assert model.output_shape[-1] > 0, backbone
    for stem in choices["stem"]:
        assert build_backbone("resnet18", stem=stem, width=4, input_shape=(32, 32, 3)).output_shape


def test_every_offered_dataset_has_metadata_and_placement_builds_canvases():
    from tfposenc.data import info, load, make_grid

    for config_class in (ChannelwiseConfig, ShiftInvarianceConfig, AttackConfig):
        for name, choices in offered(config_class).items():
            if "dataset" in name:
                for dataset in choices:
                    if dataset != "cityscapes":  # the attack's own loader (tests/trainers/attack)
                        assert info(dataset).num_classes >= 10, dataset
    source = load("digits", "test").take(2)
    for placement in offered(ChannelwiseConfig)["eval_placement"]:
        canvases = make_grid(source, grid_size=2, placement=placement, seed=0)
        assert next(iter(canvases.batch(8)))[0].shape[1:] == (16, 16, 3)


def test_every_offered_network_builds_and_runs(tmp_path):
    from trainers.channelwise.config import PRESETS

    config = ChannelwiseConfig(**{**PRESETS["smoke"], "out": str(tmp_path)})
    for network in offered(ChannelwiseConfig)["networks"]:
        model = CHANNELWISE.build_model(config, Combination(2, "zero", network, "location"))
        assert np.asarray(model(np.zeros((1, 16, 16, 3)))).shape == (1, 4), network


def test_every_offered_ranking_is_a_library_ranking():
    assert set(offered(AttackConfig)["ranking"]) == set(vocabulary.RANKING_METHODS)


@pytest.mark.parametrize("config_class", [ChannelwiseConfig, AttackConfig, ShiftInvarianceConfig])
def test_no_config_refuses_its_own_default(config_class):
    config = config_class()
    for name, choices in offered(config_class).items():
        value = getattr(config, name)
        for item in value if isinstance(value, tuple) else (value,):
            assert item in choices, (name, item)
