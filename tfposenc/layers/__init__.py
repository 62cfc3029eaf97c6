"""Position-aware Keras layers: border modes, channel shuffle and ablation, BlurPool."""

from tfposenc.layers.adaptive_polyphase_sampling2d import AdaptivePolyphaseSampling2D
from tfposenc.layers.batch_normalization import BatchNormalization
from tfposenc.layers.blur_pool2d import BlurPool2D, binomial_filter
from tfposenc.layers.channel_ablation import ChannelAblation
from tfposenc.layers.channel_shuffle import ChannelShuffle
from tfposenc.layers.padded_conv2d import CONV_PADDING_MODES, PaddedConv2D
from tfposenc.layers.padding2d import PADDING_MODES, Padding2D, pad_spatial

__all__ = [
    "AdaptivePolyphaseSampling2D",
    "BatchNormalization",
    "BlurPool2D",
    "CONV_PADDING_MODES",
    "ChannelAblation",
    "ChannelShuffle",
    "PADDING_MODES",
    "PaddedConv2D",
    "Padding2D",
    "binomial_filter",
    "pad_spatial",
]
