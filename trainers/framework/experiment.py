"""What an experiment declares; `trainers.framework.runner` does the rest.

An experiment package (`trainers/channelwise/` is the model to copy) holds a config
dataclass (a `trainers.framework.config.TrainConfig` subclass), its presets, and one
`Experiment` subclass that answers the questions only it can answer. The runner calls
the hooks in this order, for every combination `c` of `combinations(config)`:

    preflight (nothing written yet), for every c:
        data(config, c)                 pipelines built, never iterated
        build_model(config, c) (or the load_path file); check_model(config, c, model)
    then, for every c not finished earlier:
        seed(config, c)                 keras.utils.set_random_seed before data and model
        data(config, c); budget(config, c)
        load_path(config, c)            a .keras file: loaded, no training phase; else
        build_model(config, c) in the strategy's scope; compiled by the runner with
            optimizer(config, c, budget), loss(config, c), metrics(config, c)
        callbacks(config, c, data, log_dir); hparams(config, c)
        fit (the engine) -> evaluate(config, c, model, data)  -> the record's values
            (a yielded "figures" `{stem: figure}` is written by the runner: PNG files
            and TensorBoard images; the record keeps the file names)
        model_to_save(config, c, model) -> models/<name>.keras
        model_to_export(config, c, model) -> exports/<name>/<version>/
    at the end (the writing process only, `trainers.framework.summary`):
        aggregate(config, records)      one record per combination over its seeds
        summarize(config, records, run_dir), once: a `Summary` (the section of
            results.md and its figures, extra keys of results.json, TensorBoard
            series); by default report(...), finalize(...) and series(...)
        then, with --push-to, each export through the validated push, validated on
        evaluation_data(config, c): a `TestSet` whose batches are named by
        test_element(config, c) (`images`, `labels`, named extras)

TensorBoard (`tensorboard/`): one run per combination with its training scalars
(`train/`, `epoch/`, `learning_rate`, against the step; accuracies in %; Keras'
`val_<metric>` named `<validation_name>_<metric>`), its hparams (those that differ
between combinations) and its final values as `test/<name>` (the hparams metrics); the
run `report` holds the hparams table's configuration, `results.md` and the claims as
text and every PNG figure of the report; the `series` hook adds curves whose step axis
is a measured quantity (each says so in its description).
`results.json` is written at the end: `experiment`, `config`, `results` (the
aggregated records), `distribution` and the summary's extra keys, then again with
`pushes` after `--push-to`. Each record holds the combination's fields, what `evaluate` yielded, and what it
trained with: `epochs`, `steps`, `batch_size`, `learning_rate`, `beta_1` (None for an
optimizer without one), `optimizer`, `epochs_trained`, `train_seconds`,
`step_seconds`, `test_seconds`, `export`.

Required: `combinations` (frozen dataclasses with a unique `name` property, used for
file names), `input_shape` (`(height, width, channels)`, the export's size),
`build_model` (uncompiled), `data` (a `Data`), `budget` (a `Budget`), `evaluate`
(yields `(name, value)` pairs of JSON-able values, see `trainers.framework.evaluators`).
The others have defaults. What the command line needs is the experiment's `Spec`
(`trainers.framework.registry`), declared in its TensorFlow-free `config` module and
given to the class (`class Channelwise(Experiment, spec=SPEC)` sets `name`,
`config_class`, `presets`, `description` and `prog` from it). A package's `main(argv)` is
`trainers.framework.cli.main(SPEC, argv)`: it parses the flags, then imports the
experiment's module (and with it TensorFlow), so `--help` stays fast.
"""

import dataclasses
import typing

import keras
import numpy as np

from trainers.framework.config import TrainConfig
from trainers.framework.seeds import aggregate as aggregate_seeds


@dataclasses.dataclass
class Data:
    """An experiment's pipelines for one combination.

    Attributes:
        train: `tf.data.Dataset` of `(inputs, labels)` batches, repeated.
        validation: `tf.data.Dataset` of batches evaluated after every epoch, or None.
        test: `tf.data.Dataset` of batches that `evaluate` consumes.
        extra: anything else the experiment's hooks share (e.g. sample images).
    """

    train: typing.Any
    validation: typing.Any
    test: typing.Any
    extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class TestSet:
    """A test set and what each of its batches holds.

    Attributes:
        batches: `tf.data.Dataset` of tuples, one component per name of `element`.
        element: tuple of str. The components' names; `"images"` (raw pixels, 0..255)
            and `"labels"` (int class ids, per image or per pixel) are required, the
            others are named extras (e.g. `"cells"`, each canvas's grid cell). Defaults
            to `("images", "labels")`.
        ignore_class: int or None. A label value that is not scored (e.g. Cityscapes'
            255). Defaults to None.
    """

    batches: typing.Any
    element: tuple = ("images", "labels")
    ignore_class: typing.Any = None

    def __post_init__(self):
        element = tuple(self.element)
        if len(set(element)) != len(element) or not {"images", "labels"} <= set(element):
            raise ValueError(
                "`element` must name each component once, `images` and `labels` among "
                f"them. Received: element={element!r}"
            )
        object.__setattr__(self, "element", element)

    def pairs(self):
        """The batches as `(images, labels)`, the named extras dropped."""
        images, labels = self.element.index("images"), self.element.index("labels")
        return self.batches.map(lambda *parts: (parts[images], parts[labels]))


@dataclasses.dataclass
class Summary:
    """What a run's summary adds to its results, computed once (`Experiment.summarize`).

    Attributes:
        section: list of str. The experiment's markdown section of `results.md`.
        extra: dict. Extra top-level keys of `results.json` (e.g. `claims`).
        series: dict. Curves for TensorBoard, `{run: {tag: [(step, value), ...]}}`.
        axes: dict. What the step axis of a series tag is, `{tag: text}` (e.g.
            `"sweep/ranked/all": "% of channels removed"`), shown in the tag's
            description. Optional.
    """

    section: list = dataclasses.field(default_factory=list)
    extra: dict = dataclasses.field(default_factory=dict)
    series: dict = dataclasses.field(default_factory=dict)
    axes: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Budget:
    """What one combination trains for: `epochs` of `steps_per_epoch` steps."""

    epochs: int
    steps_per_epoch: int

    @property
    def steps(self):
        return self.epochs * self.steps_per_epoch


def steps_for(examples, batch_size):
    """Steps of one pass over `examples` in batches of `batch_size` (the last one partial)."""
    return -(-int(examples) // int(batch_size))


class Experiment:
    """The declarations of one experiment (see the module docstring)."""

    name = None  # the experiment's tag in `config.json`, e.g. "channelwise"
    config_class = TrainConfig
    presets = {"default": {}}
    description = ""
    prog = None  # the command in usage lines, e.g. "python -m trainers.channelwise"
    # What `data(...).validation` is, naming the per-epoch TensorBoard series
    # (`epoch/<label>_accuracy`): "validation" for data disjoint from the test set,
    # "test_set" for an experiment that validates on its test set.
    validation_label = "validation"
    # The numeric record fields averaged over seeds by `aggregate` (mean and `_std`).
    averaged = ("accuracy",)

    def __init_subclass__(cls, spec=None, **kwargs):
        """`spec`: the experiment's `registry.Spec`, whose `name`, `config_class`,
        `presets`, `description` and `prog` become the class's."""
        super().__init_subclass__(**kwargs)
        if spec is not None:
            cls.name, cls.config_class, cls.presets = spec.name, spec.config_class, spec.presets
            cls.description, cls.prog = spec.description, spec.prog

    # === Required ===

    def combinations(self, config):
        raise NotImplementedError

    def input_shape(self, config, combination):
        """`(height, width, channels)` of one input; the export accepts this size."""
        raise NotImplementedError

    def build_model(self, config, combination):
        raise NotImplementedError

    def data(self, config, combination):
        raise NotImplementedError

    def budget(self, config, combination):
        """The combination's `Budget` (epochs and steps per epoch)."""
        raise NotImplementedError

    def evaluate(self, config, combination, model, data):
        raise NotImplementedError

    # === Test set (declared) ===

    def test_element(self, config, combination):
        """The names of the components of a `data(...).test` batch (see `TestSet`)."""
        return ("images", "labels")

    def evaluation_data(self, config, combination):
        """The test set a push of the combination's export is validated on (a `TestSet`):
        by default the `test` pipeline of `data` with `test_element`'s names."""
        return TestSet(self.data(config, combination).test, self.test_element(config, combination))

    # === Training ===

    def seed(self, config, combination):
        """The seed of the combination's data and initial weights: its `seed` field
        when it has one, else `config.seed`."""
        return getattr(combination, "seed", config.seed)

    def optimizer(self, config, combination, budget):
        """The combination's optimizer; Adam from the config by default."""
        return keras.optimizers.Adam(
            config.learning_rate, beta_1=config.beta_1, beta_2=config.beta_2
        )

    def loss(self, config, combination):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self, config, combination):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def callbacks(self, config, combination, data, log_dir):
        """Extra Keras callbacks of the combination's training (e.g. TensorBoard images)."""
        return []

    def validation_name(self, config, combination):
        """What the combination's per-epoch evaluation data (`Data.validation`) is, the
        prefix of its TensorBoard series in place of Keras' `val_`: by default the class's
        `validation_label`; an experiment whose choice depends on the config (a held-out
        split or the test set) overrides this."""
        return self.validation_label

    def hparams(self, config, combination):
        """The combination's TensorBoard hparams."""
        return dataclasses.asdict(combination)

    def load_path(self, config, combination):
        """A `.keras` file the combination's model is loaded from, evaluated as it is
        with no training phase (the explicit load path); None (the default): train."""
        return None

    def check_model(self, config, combination, model):
        """Runs one zero input through `model`; raises ValueError on non-finite output."""
        outputs = np.asarray(model(np.zeros((1, *self.input_shape(config, combination)))))
        if not np.all(np.isfinite(outputs)):
            raise ValueError(f"{combination.name}: the untrained model's output is not finite")

    # === After training ===

    def model_to_save(self, config, combination, model):
        """The model written to `models/<name>.keras` (e.g. the classifier inside a
        training wrapper)."""
        return model

    def model_to_export(self, config, combination, model):
        """The model exported as a SavedModel; by default the one saved."""
        return self.model_to_save(config, combination, model)

    def aggregate(self, config, records):
        """The records of `results.json` from the per-combination ones: by default one per
        combination over its seeds (`trainers.framework.seeds.aggregate`: the lowest
        seed's values, the mean and `_std` of the `averaged` fields, the per-seed records
        under `seeds`; a record without a seed as it is). Returns a new list."""
        return aggregate_seeds(records, self.averaged)

    def summarize(self, config, records, run_dir):
        """The run's `Summary`, called once per run with the aggregated records: claims,
        tables and figures (PNG files drawn into `run_dir`; the runner also writes them
        to TensorBoard's `report/`). By default `report`, `finalize` and `series`; an
        experiment whose claims or tables share a computation overrides this instead."""
        return Summary(
            self.report(config, records, run_dir),
            self.finalize(config, records),
            self.series(config, records),
        )

    def report(self, config, records, run_dir):
        """The experiment's section of `results.md` (markdown lines); draws figures."""
        return []

    def finalize(self, config, records):
        """Extra top-level keys of `results.json` (a dict), e.g. claims or flat lists."""
        return {}

    def series(self, config, records):
        """Curves for TensorBoard: `{run: {tag: [(step, value), ...]}}`, written as
        scalars under `tensorboard/<run>/` (e.g. a sweep against the percentage of
        channels removed, consistency against the shift). By default none."""
        return {}


__all__ = ["Budget", "Data", "Experiment", "Summary", "TestSet", "steps_for"]
