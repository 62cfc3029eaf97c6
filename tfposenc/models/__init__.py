"""The paper's networks: backbones and the heads over them."""

from tfposenc.models.aug_shift import AugShift
from tfposenc.models.backbone import Backbone
from tfposenc.models.classifier import Classifier
from tfposenc.models.factory import BACKBONES, build_backbone
from tfposenc.models.gap_net import GAPNet
from tfposenc.models.nin_backbone import NiNBackbone
from tfposenc.models.permute_net import PermuteNet, SortNet, SumNet
from tfposenc.models.resnet_backbone import STEMS, ResNetBackbone
from tfposenc.models.segmenter import Segmenter
from tfposenc.models.task import Task

__all__ = [
    "BACKBONES",
    "STEMS",
    "AugShift",
    "Backbone",
    "Classifier",
    "GAPNet",
    "NiNBackbone",
    "PermuteNet",
    "ResNetBackbone",
    "Segmenter",
    "SortNet",
    "SumNet",
    "Task",
    "build_backbone",
]
