"""The names the command lines offer: the library's own TensorFlow-free vocabulary.

`tfposenc.vocabulary` holds the library's enumerations without importing Keras or
TensorFlow, so `--help` stays fast; the configs validate against them after parsing.
"""

from tfposenc.vocabulary import BACKBONES, DATASETS, DOWNSAMPLING, PLACEMENTS, STEMS, TARGETS
from tfposenc.vocabulary import CONV_PADDING_MODES as PADDING_MODES  # a conv's border modes
from tfposenc.vocabulary import PADDING_MODES as BLUR_PADDING_MODES

# The trainers' own vocabulary (trainers.core resolves them).
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
COLLECTIVES = ("auto", "ring", "nccl")  # multi_worker all-reduce implementations
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
VERBOSITIES = ("auto", "0", "1", "2")

__all__ = [
    "BACKBONES",
    "BLUR_PADDING_MODES",
    "COLLECTIVES",
    "DATASETS",
    "DOWNSAMPLING",
    "PADDING_MODES",
    "PLACEMENTS",
    "PRECISIONS",
    "STEMS",
    "STRATEGIES",
    "TARGETS",
    "VERBOSITIES",
]
