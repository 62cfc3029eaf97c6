"""The names the command lines offer, mirrored from the library for a TensorFlow-free `--help`.

The library owns these enumerations (`tfposenc.models.BACKBONES`, `tfposenc.models.STEMS`,
`tfposenc.layers.CONV_PADDING_MODES`, `tfposenc.data.DATASETS`,
`tfposenc.data.grid.PLACEMENTS`); importing any of them
imports Keras and TensorFlow, which `--help` must not do. They are repeated here once, for
the parser only, and `tests/trainers/test_config.py` asserts that each equals the
library's, so a name added to the library fails that test until it is added here. The
configs validate against the library's own tuples after parsing.
"""

BACKBONES = ("resnet18", "resnet34", "resnet50", "nin")
STEMS = ("paper", "imagenet", "cifar")
PADDING_MODES = ("zero", "reflect", "replicate", "circular", "partial", "valid")
DATASETS = ("digits", "cifar10", "cifar100", "imagenet2012")
PLACEMENTS = ("random", "all_cells")

# The trainers' own vocabulary (trainers.core resolves them).
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
COLLECTIVES = ("auto", "ring", "nccl")  # multi_worker all-reduce implementations
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
VERBOSITIES = ("auto", "0", "1", "2")
