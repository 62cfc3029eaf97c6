"""Experiment configs: dataclasses whose fields are every knob, presets, and the command line.

A field's default, help, allowed values and bounds live in the field itself:

    grid_sizes: tuple[int, ...] = option((3, 5, 7), "grid sizes k")
    backbone: str = option("resnet18", "backbone", choices=BACKBONES)

`TrainConfig` holds the knobs every trainer shares (data, optimiser, seeds, strategy,
precision, export, run directory); an experiment subclasses it. Fields are validated from
their metadata when the config is made (`validate`, which an experiment may extend). A
preset is a dict of overrides; command-line flags override the preset. `main` is the
entry point of every trainer: it parses before importing TensorFlow (so `--help` is
instant), answers a bad flag, an unusable `--out` or a missing dataset with one line and
exit code 2, and leaves nothing behind for them.
"""

import dataclasses
import json
import math
import os
import types
import typing

from tfposenc.vocabulary import DATASETS
from trainers.framework.artifacts import write_json

# The framework's own choices (the library's live in `tfposenc.vocabulary`).
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
COLLECTIVES = ("auto", "ring", "nccl")  # multi_worker all-reduce implementations
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
VERBOSITIES = ("auto", "0", "1", "2")


def option(default, help, choices=None, minimum=None, aliases=()):
    """A config field: `help` text, allowed `choices`, numeric `minimum`, extra flags."""
    metadata = {"help": help, "choices": choices, "minimum": minimum, "aliases": aliases}
    if isinstance(default, (list, dict)):
        raise ValueError(f"Use a tuple default. Received: default={default!r}")
    return dataclasses.field(default=default, metadata=metadata)


def seeds_option(default=()):
    """The `seeds` field of every config (`TrainConfig.seeds`); an experiment whose default
    is several seeds redeclares the field with this and its own `default`."""
    return option(
        default,
        "run every combination once per seed, named <group>-seed<seed>, and report the mean "
        "and sample SD over them (() means --seed alone)",
        minimum=0,
    )


def field_kind(field):
    """`(kind, optional)`: kind is int|float|str|bool or ("tuple", element kind)."""
    annotation, optional = field.type, False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation, optional = args[0], True
    if typing.get_origin(annotation) is tuple:
        return ("tuple", typing.get_args(annotation)[0].__name__), optional
    return annotation.__name__, optional


@dataclasses.dataclass
class TrainConfig:
    """The knobs every trainer shares; experiments subclass it and add their own."""

    dataset: str = option("digits", "image source", choices=DATASETS)
    data_dir: str | None = option(None, "tensorflow-datasets directory (tfds default)")
    epochs: int = option(6, "training epochs of every combination")
    batch_size: int = option(48, "global training batch size")
    eval_batch_size: int = option(256, "batch size of the final test pass")
    learning_rate: float = option(1e-3, "Adam learning rate (> 0)", minimum=0.0)
    beta_1: float = option(0.5, "Adam beta_1 in [0, 1)", minimum=0.0)
    beta_2: float = option(0.999, "Adam beta_2 in [0, 1)", minimum=0.0)
    seed: int = option(0, "random seed", minimum=0)
    seeds: tuple[int, ...] = seeds_option()
    strategy: str = option(
        "auto",
        "tf.distribute strategy (multi_worker: from TF_CONFIG)",
        choices=STRATEGIES,
    )
    collective: str = option("auto", "all-reduce of the multi_worker strategy", choices=COLLECTIVES)
    devices: tuple[str, ...] = option((), "devices of the mirrored strategy; () means all GPUs")
    precision: str = option("float32", "Keras dtype policy", choices=PRECISIONS)
    jit_compile: bool = option(False, "XLA (slower on CPU: measure first)")
    save_models: bool = option(True, "save each combination's model as models/<name>.keras")
    export: bool = option(True, "export a SavedModel per combination")
    push_to: str | None = option(
        None, "after the run, push each export through trainers.push into PUSH_TO/<combination>"
    )
    push_min_value: float | None = option(None, "push: lowest accepted accuracy (%)")
    push_max_regression: float | None = option(
        None, "push: largest accepted drop below the served version (points)", minimum=0.0
    )
    out: str = option("runs/run", "run directory (resumed when it exists)")
    verbose: str = option("auto", "Keras verbosity", choices=VERBOSITIES)

    def __post_init__(self):
        for field in dataclasses.fields(self):
            if field_kind(field)[0][0] == "tuple" and isinstance(getattr(self, field.name), list):
                setattr(self, field.name, tuple(getattr(self, field.name)))
        self.validate()

    def validate(self):
        """Checks every field against its type and metadata; extend for cross-field rules."""
        # Imported here: tfposenc.validation imports Keras, and the command line parses
        # its flags into these configs before TensorFlow is imported.
        from tfposenc.validation import check_choice, check_number, check_positive_int  # noqa: PLC0415

        for field in dataclasses.fields(self):
            name, value = field.name, getattr(self, field.name)
            (kind, optional), meta = field_kind(field), field.metadata
            if value is None and optional:
                continue
            if kind[0] == "tuple":
                if not isinstance(value, tuple) or (not value and field.default != ()):
                    raise ValueError(
                        f"`{name}` must be a non-empty tuple. Received: {name}={value!r}"
                    )
                items = [(f"{name}", v) for v in value]
                kind = kind[1]
            else:
                items = [(name, value)]
            for label, item in items:
                if meta.get("choices") is not None:
                    check_choice(item, meta["choices"], label)
                elif kind == "int":
                    check_positive_int(item, label, **_minimum(meta, 1))
                elif kind == "float":
                    check_number(item, label, **_minimum(meta, None))
                elif kind == "bool" and not isinstance(item, bool):
                    raise ValueError(f"`{label}` must be True or False. Received: {label}={item!r}")
                elif kind == "str" and not isinstance(item, str):
                    raise ValueError(f"`{label}` must be a string. Received: {label}={item!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"`seeds` must not repeat a value. Received: seeds={self.seeds!r}")
        if self.push_to is not None and not self.export:
            raise ValueError(
                "`push_to` pushes the run's exports: it needs `export` (--export). "
                f"Received: push_to={self.push_to!r}, export=False"
            )
        for name in ("learning_rate", "beta_1", "beta_2"):
            value, limit = getattr(self, name), (math.inf if name == "learning_rate" else 1.0)
            if not 0 <= value < limit or (name == "learning_rate" and value == 0):
                bounds = "> 0" if name == "learning_rate" else "in [0, 1)"
                raise ValueError(f"`{name}` must be {bounds}. Received: {name}={value!r}")

    @property
    def seed_list(self):
        """The seeds every combination runs with: `seeds`, or `(seed,)` when it is empty."""
        return self.seeds or (self.seed,)


def _minimum(meta, fallback):
    minimum = meta.get("minimum", fallback)
    return {} if minimum is None else {"minimum": minimum}


def to_dict(config):
    return json.loads(json.dumps(dataclasses.asdict(config)))


def seeded_name(group, seed):
    """The one combination name format of every experiment: `<group>-seed<seed>`, the
    group being the name shared by every seed of the combination."""
    return f"{group}-seed{seed}"


def flag(name):
    return "--" + name.replace("_", "-")


# Settings that may change between a run and its resumption: where it is, how it is
# distributed, and where finished exports are pushed (TFX's Pusher, after training).
# Whether the `.keras` models are written changes no result either.
RESUME_IGNORES = (
    "out", "distribution", "push_to", "push_min_value", "push_max_regression", "save_models",
)  # fmt: skip


def check_resume(config, experiment):
    """Raises ValueError unless `config.out` is new or holds this very config (resume)."""
    path = os.path.join(config.out, "config.json")
    if not os.path.exists(path):
        return
    resolved = {"experiment": experiment, **to_dict(config)}
    try:
        with open(path) as f:
            existing = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"`out` holds an unreadable config.json ({error}); choose another --out. "
            f"Received: out={config.out!r}"
        ) from None
    if existing.get("experiment") != experiment:
        raise ValueError(
            f"`out` holds a config of experiment {existing.get('experiment')!r}, not "
            f"{experiment!r}; choose another --out. Received: out={config.out!r}"
        )
    different = sorted(
        k
        for k in set(existing) | set(resolved)
        if k not in RESUME_IGNORES and existing.get(k) != resolved.get(k)
    )
    if different:
        details = ", ".join(f"{k}: {existing.get(k)!r} -> {resolved.get(k)!r}" for k in different)
        raise ValueError(
            f"`out` holds a different {experiment} config ({details}); resume with the same "
            f"settings or choose another --out. Received: out={config.out!r}"
        )


def write_config(config, experiment):
    """Writes the resolved config to `config.out/config.json` (atomically)."""
    write_json(
        os.path.join(config.out, "config.json"), {"experiment": experiment, **to_dict(config)}
    )


__all__ = [
    "seeded_name",
    "COLLECTIVES",
    "PRECISIONS",
    "STRATEGIES",
    "VERBOSITIES",
    "TrainConfig",
    "check_resume",
    "field_kind",
    "flag",
    "option",
    "seeds_option",
    "to_dict",
    "write_config",
]
