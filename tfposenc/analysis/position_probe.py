"""How much position a backbone encodes, channel-wise: the paper's measurement on any model.

`position_probe` places images on grid canvases of the backbone's input size
(`tfposenc.data.make_grid`, every image in every cell), extracts the backbone's
features (frozen by default), trains the paper's read-outs for the cell (and for the
image's class when labels are given) and reports their test accuracies beside chance,
the channel ranking (`rank_position_channels`) and how many of the top-ranked channels
must be removed to halve the location accuracy. It is TensorFlow code (tf.data
canvases), like the rest of `tfposenc.data`.
"""

import keras
import numpy as np
import tensorflow as tf

from tfposenc.analysis.ablation_sweep import DEFAULT_FRACTIONS, _check_fractions, count_for
from tfposenc.analysis.ranking import RANKING_METHODS, rank_position_channels
from tfposenc.data.grid import make_grid
from tfposenc.layers import ChannelShuffle, PaddedConv2D
from tfposenc.models.backbone import Backbone
from tfposenc.normalization import pixel_mean, pixel_std
from tfposenc.validation import check_choice, check_choices, check_number, check_positive_int

READOUTS = ("classifier", "permutenet", "gapnet")


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
      itself (PAPER.md, section 7).

    With `frozen=True` the backbone runs once in inference mode and the read-outs train
    on its standardised features (per channel, by the training canvases' statistics);
    with `frozen=False` each read-out fine-tunes its own copy of the backbone as a
    tfposenc task (`Classifier`, `PermuteNet`, `GAPNet`).

    The channels are ranked on the training canvases with `rank_position_channels`
    (`"label"`: each channel's between-cell share of variance). The classifier's
    location read-out is then scored with the top-ranked channels removed (zeroed at
    every position, no retraining), fraction by fraction; `halving_fraction` is the
    first fraction at which its accuracy is at most half its accuracy with every
    channel (None if none in `fractions` reaches that).

    Args:
        backbone: a `tfposenc.models.Backbone` or a functional Keras model (through
            `Backbone.from_model`), with a fixed square input size divisible by
            `grid_size`.
        images: `[N, h, w, channels]` images, pixels 0..255 (uint8 or float); one
            channel is repeated to the backbone's channel count.
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
        ranking_method: a `rank_position_channels` method; the flip methods need
            images that are not symmetric. Defaults to `"label"`.
        fractions: fractions of the channels removed for `halving_fraction`.
            Defaults to `DEFAULT_FRACTIONS`.
        seed: int, seeds the split, the shuffles and the read-outs. Defaults to `0`.
        verbose: int, Keras' `fit` verbosity (1: a progress bar per read-out).
            Defaults to `0`.
        padding_mode: string or None, the border mode of the GAPNet head; None takes
            `backbone.padding_mode` (`"zero"` for a plain model unless
            `Backbone.from_model` was told otherwise). Defaults to `None`.

    Returns:
        A dict: `readouts` (`{name: {"location": accuracy, "class": accuracy or
        None}}`), `chance` (`{"location": 1 / grid_size**2, "class": 1 / classes or
        None}`), `ranking` (`{"method", "order", "scores"}`), `halving_fraction`,
        `ablation` (`[{"fraction", "num_channels", "location"}]`), and the settings
        (`grid_size`, `cell_size`, `num_channels`, `frozen`, `steps`, `train_images`,
        `test_images`).

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
    check_number(learning_rate, "learning_rate", 0.0)
    check_number(train_fraction, "train_fraction", 0.0, 1.0, inclusive=False)
    check_choice(ranking_method, RANKING_METHODS, "ranking_method")
    fractions = tuple(sorted(set(_check_fractions(fractions)) | {0.0}))
    size, channels = _input_size(backbone, grid_size)
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[0] < 2:
        raise ValueError(
            "`images` must be [N, h, w, channels] with N >= 2. "
            f"Received: images of shape {images.shape}"
        )
    if images.shape[-1] != channels:
        if images.shape[-1] != 1:
            raise ValueError(
                f"`images` must have 1 or {channels} channels (the backbone's). "
                f"Received: images of shape {images.shape}"
            )
        images = np.repeat(images, channels, axis=-1)
    if labels is not None:
        labels = np.asarray(labels).astype("int64").reshape(-1)
        if labels.shape[0] != images.shape[0]:
            raise ValueError(
                "`labels` must hold one class per image. "
                f"Received: {labels.shape[0]} labels for {images.shape[0]} images"
            )
    cells = grid_size * grid_size
    order = np.random.default_rng(seed).permutation(images.shape[0])
    n_train = min(max(int(round(train_fraction * images.shape[0])), 1), images.shape[0] - 1)
    split = {"train": order[:n_train], "test": order[n_train:]}
    data = {}
    for part, index in split.items():
        canvases = _canvases(images[index], grid_size, size // grid_size, mean)
        data[part] = {
            "canvases": canvases,
            "location": np.tile(np.arange(cells, dtype="int64"), len(index)),
            "class": None if labels is None else np.repeat(labels[index], cells),
        }
    targets = {"location": cells}
    if labels is not None:
        targets["class"] = int(labels.max()) + 1
    settings = dict(
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        head_padding=head_padding,
    )
    normalise = _normaliser(mean, std)
    if frozen:
        run = _FrozenRun(backbone, data, normalise, "gapnet" in readouts, settings, verbose)
    else:
        run = _FineTuneRun(backbone, data, mean, std, settings, verbose)
    results = {}
    for name in readouts:
        results[name] = {"location": None, "class": None}
        for target, classes in targets.items():
            if verbose:
                print(f"position_probe: training {name} for {target} ({steps} steps)")
            results[name][target] = run.train_and_score(name, target, classes)
    pooled_train, pooled_test, score_classifier = run.ranking_inputs(targets["location"])
    ranking_order, scores = rank_position_channels(
        _Precomputed(), [(pooled_train, data["train"]["location"])], ranking_method
    )
    ablation, halving = [], None
    baseline = None
    for fraction in fractions:
        count = count_for(fraction, pooled_test.shape[1])
        kept = pooled_test.copy()
        kept[:, ranking_order[:count]] = 0.0
        accuracy = score_classifier(kept)
        baseline = accuracy if baseline is None else baseline
        ablation.append({"fraction": fraction, "num_channels": count, "location": accuracy})
        if halving is None and fraction > 0 and accuracy <= baseline / 2:
            halving = fraction
    return {
        "readouts": results,
        "chance": {
            "location": 1.0 / cells,
            "class": None if labels is None else 1.0 / targets["class"],
        },
        "ranking": {
            "method": ranking_method,
            "order": ranking_order.tolist(),
            "scores": scores.tolist(),
        },
        "halving_fraction": halving,
        "ablation": ablation,
        "grid_size": grid_size,
        "cell_size": size // grid_size,
        "num_channels": int(pooled_test.shape[1]),
        "frozen": bool(frozen),
        "steps": steps,
        "train_images": int(n_train),
        "test_images": int(images.shape[0] - n_train),
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


def _fit(model, inputs, labels, settings, verbose):
    model.compile(
        optimizer=keras.optimizers.Adam(settings["learning_rate"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,  # XLA is several times slower on CPU (PAPER.md, section 6)
    )
    if isinstance(inputs, tf.data.Dataset):
        dataset = tf.data.Dataset.zip((inputs, tf.data.Dataset.from_tensor_slices(labels)))
    else:
        dataset = tf.data.Dataset.from_tensor_slices((inputs, labels))
    dataset = (
        dataset.shuffle(len(labels), seed=settings["seed"], reshuffle_each_iteration=True)
        .repeat()
        .batch(settings["batch_size"])
    )
    model.fit(dataset, steps_per_epoch=settings["steps"], epochs=1, verbose=verbose, shuffle=False)


def _accuracy(model, inputs, labels, batch_size):
    if isinstance(inputs, tf.data.Dataset):
        inputs = inputs.batch(batch_size)
        logits = model.predict(inputs, verbose=0)
    else:
        logits = model.predict(inputs, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


class _Precomputed:
    """A "model" whose images are already its pooled features (for the ranking)."""

    def pooled_features(self, features, training=False):
        return features


class _FrozenRun:
    """Read-outs on the features of the backbone, computed once in inference mode."""

    def __init__(self, backbone, data, normalise, keep_maps, settings, verbose):
        self.data, self.settings, self.verbose = data, settings, verbose
        extract = keras.Model(backbone.input, backbone.output)
        self.pooled, self.maps = {}, {}
        for part in ("train", "test"):
            pooled, maps = [], []
            batches = data[part]["canvases"].batch(settings["batch_size"]).map(normalise)
            for batch in batches:
                features = np.asarray(extract.predict_on_batch(batch), "float32")
                pooled.append(features.mean(axis=(1, 2)))
                if keep_maps:
                    maps.append(features.astype("float16"))
            self.pooled[part] = np.concatenate(pooled)
            self.maps[part] = np.concatenate(maps) if keep_maps else None
        train = self.pooled["train"].astype("float64")
        self.offset = train.mean(axis=0)
        spread = train.std(axis=0)
        self.scale = np.where(spread > 1e-6 * max(spread.max(), 1e-30), spread, 1.0)

    def standardise(self, features):
        return ((features - self.offset) / self.scale).astype("float32")

    def train_and_score(self, name, target, classes):
        keras.utils.set_random_seed(self.settings["seed"])
        channels = self.pooled["train"].shape[1]
        if name == "gapnet":
            shape = self.maps["train"].shape[1:]
            inputs = keras.Input(shape)
            x = PaddedConv2D(
                classes, 3, padding_mode=self.settings["head_padding"], name="head_conv"
            )(inputs)
            outputs = keras.layers.GlobalAveragePooling2D()(x)
            features = {part: self.standardise(self.maps[part]) for part in ("train", "test")}
        else:
            inputs = keras.Input((channels,))
            x = inputs
            if name == "permutenet":
                x = ChannelShuffle(seed=self.settings["seed"], name="shuffle")(x)
            outputs = keras.layers.Dense(classes, name="dense")(x)
            features = {part: self.standardise(self.pooled[part]) for part in ("train", "test")}
        model = keras.Model(inputs, outputs)
        _fit(model, features["train"], self.data["train"][target], self.settings, self.verbose)
        accuracy = _accuracy(
            model, features["test"], self.data["test"][target], self.settings["batch_size"]
        )
        if name == "classifier" and target == "location":
            self.classifier = model
        return accuracy

    def ranking_inputs(self, classes):
        if not hasattr(self, "classifier"):
            self.train_and_score("classifier", "location", classes)
        labels = self.data["test"]["location"]

        def score(pooled):
            return _accuracy(self.classifier, self.standardise(pooled), labels, 256)

        return self.pooled["train"], self.pooled["test"], score


class _FineTuneRun:
    """Read-outs as tfposenc tasks, each over its own trainable copy of the backbone."""

    def __init__(self, backbone, data, mean, std, settings, verbose):
        self.backbone, self.data = backbone, data
        self.mean, self.std, self.settings, self.verbose = mean, std, settings, verbose

    def _task(self, name, classes):
        from tfposenc.convert import convert_model
        from tfposenc.models import Classifier, GAPNet, PermuteNet

        keras.utils.set_random_seed(self.settings["seed"])
        copy, _ = convert_model(self.backbone)  # the same weights, its own variables
        copy.padding_mode = self.settings["head_padding"]  # GAPNet's head follows it
        kwargs = {"mean": self.mean, "std": self.std}
        if name == "classifier":
            return Classifier(copy, classes, **kwargs)
        if name == "permutenet":
            return PermuteNet(copy, classes, seed=self.settings["seed"], **kwargs)
        return GAPNet(copy, classes, head_kernel_size=3, **kwargs)

    def train_and_score(self, name, target, classes):
        task = self._task(name, classes)
        data = self.data
        _fit(task, data["train"]["canvases"], data["train"][target], self.settings, self.verbose)
        accuracy = _accuracy(
            task, data["test"]["canvases"], data["test"][target], self.settings["batch_size"]
        )
        if name == "classifier" and target == "location":
            self.classifier = task
        return accuracy

    def _pooled(self, part):
        batches = self.data[part]["canvases"].batch(self.settings["batch_size"])
        return np.concatenate(
            [np.asarray(self.classifier.pooled_features(b, training=False)) for b in batches]
        )

    def ranking_inputs(self, classes):
        if not hasattr(self, "classifier"):
            self.train_and_score("classifier", "location", classes)
        labels = self.data["test"]["location"]

        def score(pooled):
            logits = np.asarray(self.classifier.dense(pooled))
            return float(np.mean(np.argmax(logits, axis=-1) == labels))

        return self._pooled("train"), self._pooled("test"), score
