"""How much position a backbone encodes, channel-wise: the paper's measurement on any model.

`position_probe` places images on grid canvases of the backbone's input size
(`tfposenc.data.make_grid`, every image in every cell), extracts the backbone's
features (frozen by default), trains the paper's read-outs for the cell (and for the
image's class when labels are given) and reports their test accuracies beside chance,
the channel ranking and how many of the top-ranked channels must be removed to halve
the location accuracy. The read-outs live in `tfposenc.analysis.readouts`, the ranking
and removal on pooled arrays in `tfposenc.analysis.channel_scores`. It is TensorFlow
code (tf.data canvases), like the rest of `tfposenc.data`.
"""

import keras
import numpy as np
import tensorflow as tf

from tfposenc.analysis.ablation_sweep import DEFAULT_FRACTIONS, _check_fractions
from tfposenc.analysis.channel_scores import ablation_curve, label_scores, order_by_score
from tfposenc.analysis.readouts import READOUTS, FineTunedReadouts, FrozenReadouts
from tfposenc.data.grid import make_grid
from tfposenc.models.backbone import Backbone
from tfposenc.normalization import pixel_mean, pixel_std
from tfposenc.validation import check_choice, check_choices, check_number, check_positive_int

# How the probe ranks its pooled channels (on the training canvases).
PROBE_RANKINGS = ("label", "magnitude")


def position_probe(
    backbone,
    images,
    labels=None,
    grid_size=3,
    readouts=READOUTS,
    steps=300,
    frozen=True,
    batch_size=32,
    learning_rate=1e-3,
    mean=None,
    std=None,
    train_fraction=0.8,
    ranking_method="label",
    fractions=DEFAULT_FRACTIONS,
    seed=0,
    verbose=0,
    padding_mode=None,
    eval_batch_size=None,
    num_classes=None,
):
    """Measures how much absolute position a backbone's channels encode.

    Every image is pasted into every cell of a `grid_size x grid_size` canvas of the
    backbone's input size (cells of `input_size // grid_size` pixels, empty cells the
    colour `255 * mean`); the images are split into a training and a test part first,
    so test canvases hold unseen images. The read-outs, each trained for `steps` steps
    of Adam (batch `batch_size`) on the training canvases and scored on the test ones:

    - `"classifier"`: a dense layer on the globally pooled channels.
    - `"permutenet"`: the same behind a fresh random channel permutation per batch, in
      training and at test time (Islam et al., 2021): what survives without knowing
      which channel is which.
    - `"gapnet"`: a 3x3 conv to the classes on the feature map (padded with
      `padding_mode`, as `GAPNet` pads with its backbone's mode), globally pooled (no
      dense layer). A zero-padded head on a map of 3x3 or less reads position by
      itself (measured on the digits at width 16: README, channel-wise experiment).

    With `frozen=True` the backbone runs once in inference mode and the read-outs train
    on its standardised features (per channel, by the training canvases' statistics);
    with `frozen=False` each read-out fine-tunes its own copy of the backbone as a
    tfposenc task (`Classifier`, `PermuteNet`, `GAPNet`).

    The channels are ranked on the training canvases' pooled channels (`"label"`: each
    channel's between-cell share of variance, `channel_scores.label_scores`, as
    `rank_position_channels(method="label")`; `"magnitude"`: the mean absolute value,
    the control). The classifier's
    location read-out is then scored with the top-ranked channels removed (zeroed at
    every position, no retraining), fraction by fraction; `halving_fraction` is the
    first fraction at which its accuracy is at most half its accuracy with every
    channel (None if none in `fractions` reaches that).

    Args:
        backbone: a `tfposenc.models.Backbone` or a functional Keras model (through
            `Backbone.from_model`), with a fixed square input size divisible by
            `grid_size`.
        images: `[N, h, w, channels]` images, pixels 0..255 (uint8 or float), N >= 2;
            one channel is repeated to the backbone's channel count.
        labels: optional `[N]` integer classes; then each read-out is also trained
            for the image's class. Defaults to `None`.
        grid_size: int >= 2, cells per side. Defaults to `3`.
        readouts: names among `READOUTS`. Defaults to all three.
        steps: int, training steps per read-out and target. Defaults to `300`.
        frozen: bool. Defaults to `True`.
        batch_size: int. Defaults to `32`.
        learning_rate: float, Adam's learning rate. Defaults to `1e-3`.
        mean: per-channel pixel mean in [0, 1] units, or None: the model input is
            `(pixels - 255 * mean) / (255 * std)` (see `tfposenc.models.Task`).
        std: per-channel pixel standard deviation in [0, 1] units, or None.
        train_fraction: float in (0, 1), the share of images used for training.
            Defaults to `0.8`.
        ranking_method: one of `PROBE_RANKINGS`. Defaults to `"label"`.
        fractions: fractions of the channels removed for `halving_fraction`.
            Defaults to `DEFAULT_FRACTIONS`.
        seed: int, seeds the split, the shuffles and the read-outs. Defaults to `0`.
        verbose: int, Keras' `fit` verbosity (1: a progress bar per read-out).
            Defaults to `0`.
        padding_mode: string or None, the border mode of the GAPNet head; None takes
            `backbone.padding_mode` (`"zero"` for a plain model unless
            `Backbone.from_model` was told otherwise). Defaults to `None`.
        eval_batch_size: int or None, the batch of feature extraction and scoring;
            None takes `batch_size`. Defaults to `None`.
        num_classes: int or None, the classes of `labels` (chance is 1 / num_classes);
            None takes the largest label + 1. Defaults to `None`.

    Returns:
        A dict: `readouts` (`{name: {"location": accuracy, "class": accuracy or
        None}}`), `chance` (`{"location": 1 / grid_size**2, "class": 1 / classes or
        None}`), `ranking` (`{"method", "order", "scores"}`), `halving_fraction`,
        `ablation` (`[{"fraction", "num_channels", "location"}]`), and the settings
        (`grid_size`, `cell_size`, `num_channels`, `frozen`, `steps`, `train_images`,
        `test_images`, `test_canvases`: the test images times the cells, the number
        of predictions behind each accuracy).

    Example:

    >>> backbone = ResNetBackbone(depth=18, width=8, input_shape=(48, 48, 3))
    >>> images, labels = tfposenc.data.load_digits_arrays("train")
    >>> result = position_probe(backbone, images[:100], labels[:100], steps=20)
    >>> result["readouts"]["classifier"]["location"]  # doctest: +SKIP
    """
    backbone = _as_backbone(backbone)
    head_padding = Backbone.check_padding_mode(padding_mode or backbone.padding_mode)
    check_positive_int(grid_size, "grid_size", minimum=2)
    readouts = tuple(readouts)
    check_choices(readouts, READOUTS, "readouts")
    check_positive_int(steps, "steps")
    check_positive_int(batch_size, "batch_size")
    eval_batch_size = batch_size if eval_batch_size is None else eval_batch_size
    check_positive_int(eval_batch_size, "eval_batch_size")
    check_number(learning_rate, "learning_rate", 0.0)
    check_number(train_fraction, "train_fraction", 0.0, 1.0, inclusive=False)
    check_choice(ranking_method, PROBE_RANKINGS, "ranking_method")
    fractions = tuple(sorted(set(_check_fractions(fractions)) | {0.0}))
    size, channels = _input_size(backbone, grid_size)
    images = _check_images(images, channels)
    if labels is not None:
        labels = np.asarray(labels).astype("int64").reshape(-1)
        if labels.shape[0] != images.shape[0]:
            raise ValueError(
                "`labels` must hold one class per image. "
                f"Received: {labels.shape[0]} labels for {images.shape[0]} images"
            )
        if num_classes is None:
            num_classes = int(labels.max()) + 1
        check_positive_int(num_classes, "num_classes")
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(
                f"`labels` must be in [0, num_classes={num_classes}). "
                f"Received: labels in [{labels.min()}, {labels.max()}]"
            )
    cells = grid_size * grid_size
    order = np.random.default_rng(seed).permutation(images.shape[0])
    n_train = min(max(int(round(train_fraction * images.shape[0])), 1), images.shape[0] - 1)
    split = {"train": order[:n_train], "test": order[n_train:]}
    canvases, targets = {}, {}
    for part, index in split.items():
        canvases[part] = _canvases(images[index], grid_size, size // grid_size, mean)
        targets[part] = {"location": np.tile(np.arange(cells, dtype="int64"), len(index))}
        if labels is not None:
            targets[part]["class"] = np.repeat(labels[index], cells)
    classes = {"location": cells}
    if labels is not None:
        classes["class"] = num_classes
    settings = dict(
        steps=steps,
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        learning_rate=learning_rate,
        seed=seed,
        head_padding=head_padding,
    )
    if frozen:
        normalise = _normaliser(mean, std)
        keep_maps = "gapnet" in readouts
        run = FrozenReadouts(backbone, canvases, targets, normalise, keep_maps, settings, verbose)
    else:
        run = FineTunedReadouts(backbone, canvases, targets, mean, std, settings, verbose)
    results = {}
    for name in readouts:
        results[name] = {"location": None, "class": None}
        for target, count in classes.items():
            if verbose:
                print(f"position_probe: training {name} for {target} ({steps} steps)")
            results[name][target] = run.train_and_score(name, target, count)
    score = run.location_scorer(cells)
    pooled_train = run.pooled("train")
    if ranking_method == "label":
        channel_scores = label_scores(pooled_train, targets["train"]["location"])
    else:
        channel_scores = np.abs(pooled_train.astype("float64")).mean(axis=0)
    ranking_order = order_by_score(channel_scores)
    curve, halving = ablation_curve(run.pooled("test"), ranking_order, fractions, score)
    return {
        "readouts": results,
        "chance": {
            "location": 1.0 / cells,
            "class": None if labels is None else 1.0 / classes["class"],
        },
        "ranking": {
            "method": ranking_method,
            "order": ranking_order.tolist(),
            "scores": channel_scores.tolist(),
        },
        "halving_fraction": halving,
        "ablation": [
            {"fraction": c["fraction"], "num_channels": c["num_channels"], "location": c["score"]}
            for c in curve
        ],
        "grid_size": grid_size,
        "cell_size": size // grid_size,
        "num_channels": len(ranking_order),
        "frozen": bool(frozen),
        "steps": steps,
        "train_images": int(n_train),
        "test_images": int(images.shape[0] - n_train),
        "test_canvases": int((images.shape[0] - n_train) * cells),
    }


def _as_backbone(backbone):
    if isinstance(backbone, Backbone):
        return backbone
    if isinstance(backbone, keras.Model):
        return Backbone.from_model(backbone)
    raise ValueError(
        "`backbone` must be a tfposenc Backbone or a functional Keras model. "
        f"Received: backbone={type(backbone).__name__}"
    )


def _check_images(images, channels):
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[0] < 2:
        raise ValueError(
            "`images` must be [N, h, w, channels] with N >= 2. "
            f"Received: images of shape {images.shape}"
        )
    if images.shape[-1] == channels:
        return images
    if images.shape[-1] != 1:
        allowed = "1 channel" if channels == 1 else f"1 or {channels} channels"
        raise ValueError(
            f"`images` must have {allowed} (the backbone takes {channels}). "
            f"Received: images of shape {images.shape}"
        )
    return np.repeat(images, channels, axis=-1)


def _input_size(backbone, grid_size):
    shape = tuple(backbone.input.shape[1:])
    if len(shape) != 3 or shape[0] is None or shape[0] != shape[1] or shape[2] is None:
        raise ValueError(
            "`backbone` must take square images of a fixed size, channels last (build it "
            f"with e.g. input_shape=(96, 96, 3)). Received: input shape {shape}"
        )
    if shape[0] % grid_size:
        raise ValueError(
            f"`grid_size` must divide the backbone's input size {shape[0]}. "
            f"Received: grid_size={grid_size}"
        )
    return shape[0], shape[2]


def _canvases(images, grid_size, cell_size, mean):
    """Every image in every cell, in cell order, as a batched tf.data pipeline."""
    dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(len(images), "int64")))
    canvases = make_grid(
        dataset, grid_size, "location", cell_size=cell_size, mean=mean, placement="all_cells"
    )
    return canvases.map(lambda canvas, label: canvas)


def _normaliser(mean, std):
    if mean is None and std is None:
        return lambda x: x
    offset, scale = pixel_mean(mean), pixel_std(std)
    return lambda x: (x - offset) / scale
