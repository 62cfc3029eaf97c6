"""The position probe's read-outs: trained on a backbone's features, scored on test canvases.

Two ways to hold the backbone (see `position_probe`'s `frozen`):

- `FrozenReadouts`: the backbone runs once in inference mode; its pooled channels (and
  feature maps, for GAPNet) are kept as arrays, standardised per channel by the
  training canvases' statistics, and each read-out is a small Keras model on them:
  `Dense` on the pooled channels (`"classifier"`), the same behind a `ChannelShuffle`
  (`"permutenet"`), a padded 3x3 conv to the classes, globally pooled (`"gapnet"`).
- `FineTunedReadouts`: each read-out is a tfposenc task (`Classifier`, `PermuteNet`,
  `GAPNet`) over its own trainable copy of the backbone.

Both answer `train_and_score(name, target, classes) -> accuracy` and, for the channel
ranking and ablation, `pooled(part)` (the pooled channels of `"train"` or `"test"`
canvases, `[N, C]`) and `location_scorer()` (a callable scoring the location
classifier on pooled channels, `[N, C]` -> accuracy).
"""

import keras
import numpy as np
import tensorflow as tf

from tfposenc.convert import convert_model
from tfposenc.layers import ChannelShuffle, PaddedConv2D
from tfposenc.metrics.accuracy import top1
from tfposenc.models import Classifier, GAPNet, PermuteNet
from tfposenc.vocabulary import PROBE_READOUTS

READOUTS = PROBE_READOUTS


def fit_readout(model, inputs, labels, settings, verbose=0):
    """`settings["steps"]` steps of Adam on shuffled, repeated `(inputs, labels)`."""
    model.compile(
        optimizer=keras.optimizers.Adam(settings["learning_rate"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,  # XLA is several times slower on CPU
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


def predict(model, inputs, batch_size, count=None):
    """The model's outputs on arrays or an unbatched dataset of `count` elements (told
    to Keras, which otherwise warns that a dataset of unknown length "ran out of data")."""
    if isinstance(inputs, tf.data.Dataset):
        if count is not None:
            inputs = inputs.apply(tf.data.experimental.assert_cardinality(count))
        return model.predict(inputs.batch(batch_size), verbose=0)
    return model.predict(inputs, batch_size=batch_size, verbose=0)


class FrozenReadouts:
    """Read-outs on the features of a frozen backbone, extracted once.

    Args:
        backbone: a `tfposenc.models.Backbone`.
        canvases: `{"train": dataset, "test": dataset}` of unbatched canvases.
        labels: `{part: {target: int array}}`.
        normalise: callable, canvases (pixels) -> the backbone's input.
        keep_maps: bool, keep the feature maps (for GAPNet), as float16.
        settings: dict with `steps`, `batch_size`, `eval_batch_size`, `learning_rate`,
            `seed`, `head_padding`.
        verbose: Keras' `fit` verbosity.
    """

    def __init__(self, backbone, canvases, labels, normalise, keep_maps, settings, verbose=0):
        self.labels, self.settings, self.verbose = labels, settings, verbose
        extract = keras.Model(backbone.input, backbone.output)
        self.pooled_features, self.maps = {}, {}
        for part, dataset in canvases.items():
            pooled, maps = [], []
            for batch in dataset.batch(settings["eval_batch_size"]).map(normalise):
                features = np.asarray(extract.predict_on_batch(batch), "float32")
                pooled.append(features.mean(axis=(1, 2)))
                if keep_maps:
                    maps.append(features.astype("float16"))
            self.pooled_features[part] = np.concatenate(pooled)
            self.maps[part] = np.concatenate(maps) if keep_maps else None
        train = self.pooled_features["train"].astype("float64")
        self.offset = train.mean(axis=0)
        spread = train.std(axis=0)
        self.scale = np.where(spread > 1e-6 * max(spread.max(), 1e-30), spread, 1.0)
        self.classifier = None

    def standardise(self, features):
        return ((features - self.offset) / self.scale).astype("float32")

    def _head(self, name, classes):
        seed, padding = self.settings["seed"], self.settings["head_padding"]
        if name == "gapnet":
            inputs = keras.Input(self.maps["train"].shape[1:])
            x = PaddedConv2D(classes, 3, padding_mode=padding, name="head_conv")(inputs)
            return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x)), self.maps
        inputs = keras.Input(self.pooled_features["train"].shape[1:])
        x = ChannelShuffle(seed=seed, name="shuffle")(inputs) if name == "permutenet" else inputs
        return keras.Model(
            inputs, keras.layers.Dense(classes, name="dense")(x)
        ), self.pooled_features

    def train_and_score(self, name, target, classes):
        keras.utils.set_random_seed(self.settings["seed"])
        model, source = self._head(name, classes)
        train, test = (self.standardise(source[part]) for part in ("train", "test"))
        fit_readout(model, train, self.labels["train"][target], self.settings, self.verbose)
        logits = predict(model, test, self.settings["eval_batch_size"])
        if name == "classifier" and target == "location":
            self.classifier = model
        return top1(logits, self.labels["test"][target])

    def pooled(self, part):
        return self.pooled_features[part]

    def location_scorer(self, classes):
        if self.classifier is None:
            self.train_and_score("classifier", "location", classes)
        batch_size, labels = self.settings["eval_batch_size"], self.labels["test"]["location"]
        return lambda pooled: top1(
            predict(self.classifier, self.standardise(pooled), batch_size), labels
        )


class FineTunedReadouts:
    """Read-outs as tfposenc tasks, each over its own trainable copy of the backbone.

    Args:
        backbone: a `tfposenc.models.Backbone`.
        canvases: `{"train": dataset, "test": dataset}` of unbatched canvases (pixels).
        labels: `{part: {target: int array}}`.
        mean, std: the tasks' pixel statistics (see `tfposenc.models.Task`).
        settings, verbose: as `FrozenReadouts`'.
    """

    def __init__(self, backbone, canvases, labels, mean, std, settings, verbose=0):
        self.backbone, self.canvases, self.labels = backbone, canvases, labels
        self.mean, self.std, self.settings, self.verbose = mean, std, settings, verbose
        self.classifier = None

    def _task(self, name, classes):
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
        train, test = self.canvases["train"], self.canvases["test"]
        fit_readout(task, train, self.labels["train"][target], self.settings, self.verbose)
        labels = self.labels["test"][target]
        logits = predict(task, test, self.settings["eval_batch_size"], len(labels))
        if name == "classifier" and target == "location":
            self.classifier = task
        return top1(logits, labels)

    def pooled(self, part):
        batches = self.canvases[part].batch(self.settings["eval_batch_size"])
        return np.concatenate(
            [np.asarray(self.classifier.pooled_features(b, training=False)) for b in batches]
        )

    def location_scorer(self, classes):
        if self.classifier is None:
            self.train_and_score("classifier", "location", classes)
        labels = self.labels["test"]["location"]
        return lambda pooled: top1(np.asarray(self.classifier.dense(pooled)), labels)


__all__ = ["READOUTS", "FineTunedReadouts", "FrozenReadouts", "fit_readout", "predict", "top1"]
