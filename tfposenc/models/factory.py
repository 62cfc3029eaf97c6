"""`build_backbone`: one name per backbone, from the command line to the model."""

from tfposenc.models.nin_backbone import NiNBackbone
from tfposenc.models.resnet_backbone import STEMS, ResNetBackbone
from tfposenc.validation import check_choice
from tfposenc.vocabulary import BACKBONES

RESNET_DEPTHS = {"resnet18": 18, "resnet34": 34, "resnet50": 50}


def build_backbone(name, **kwargs):
    """Builds the backbone called `name` with the constructor arguments `kwargs`.

    Args:
        name: one of `"resnet18"`, `"resnet34"`, `"resnet50"` (`ResNetBackbone` of that
            depth) or `"nin"` (`NiNBackbone`).
        **kwargs: the backbone's constructor arguments (`stem`, `width`,
            `padding_mode`, `downsampling`, `input_shape`, ...). `stem` is ignored by
            `"nin"`, which has none.

    Example:

    >>> backbone = build_backbone("resnet18", stem="cifar", width=8, padding_mode="circular")
    >>> backbone.output_channels
    64
    """
    check_choice(name, BACKBONES, "name")
    if "stem" in kwargs and kwargs["stem"] is not None:
        check_choice(kwargs["stem"], STEMS, "stem")
    if name == "nin":
        kwargs.pop("stem", None)
        return NiNBackbone(**kwargs)
    return ResNetBackbone(RESNET_DEPTHS[name], **kwargs)
