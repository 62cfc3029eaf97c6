"""The names of tfposenc's choices, in one TensorFlow-free module.

Layers, models, data and augmentation import their enumerations from here, and so do
the command lines (`trainers/`), whose `--help` must not import Keras or TensorFlow.
"""

# Border modes: `Padding2D`, `BlurPool2D`, shift fills; convs add partial and valid.
PADDING_MODES = ("zero", "reflect", "replicate", "circular")
CONV_PADDING_MODES = PADDING_MODES + ("partial", "valid")

BACKBONES = ("resnet18", "resnet34", "resnet50", "nin")
STEMS = ("paper", "imagenet", "cifar")
DOWNSAMPLING = ("stride", "blur", "aps")

DATASETS = ("digits", "cifar10", "cifar100", "imagenet2012", "glyphs", "textured_glyphs")
TARGETS = ("location", "class")
# Metrics a push's model validation applies its thresholds to (`trainers.push --metric`):
# top-1 accuracy in %, per pixel for label maps.
PUSH_METRICS = ("accuracy",)
PLACEMENTS = ("random", "all_cells")

SHIFT_MODES = ("centred", "symmetric", "one_sided", "crop", "circular")
SHIFT_PER = ("image", "batch")

# Channel rankings of `tfposenc.analysis.rank_position_channels`.
RANKING_METHODS = ("flip", "flip_left", "flip_right", "flip_2d", "label", "magnitude")

# Initialisations of the dense read-out of `Classifier`, `PermuteNet`, `SortNet`, `SumNet`:
# Keras' Glorot uniform (bias 0) or PyTorch's `nn.Linear` default (the authors').
READOUT_INITS = ("glorot", "torch")
