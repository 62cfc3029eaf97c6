"""Where the framework finds what sits above it: experiments and the push, by name.

The framework imports no experiment and not `trainers.delivery` (the layering that
`tests/test_import_graph.py` checks): the packages above it are named here as strings
and imported with `importlib` only when a run or a push asks for them. An experiment
package exposes `EXPERIMENT` (its `trainers.framework.experiment.Experiment`); the push
after a run (`--push-to`) is `trainers.delivery.run_exports.push_exports`.

An experiment's command line needs only its `Spec` (config class, presets, description,
usage name and where its `Experiment` lives), declared in its TensorFlow-free `config`
module: `trainers.framework.cli.main` parses the flags with it, then imports the
experiment's module once (`Spec.load`), after TensorFlow.
"""

import dataclasses
import importlib

# name in `config.json` -> the package that holds its `EXPERIMENT`
EXPERIMENTS = {
    "channelwise": "trainers.channelwise",
    "attack": "trainers.attack",
    "shift_invariance": "trainers.shift_invariance",
    "probe": "trainers.probe",
}
# `--push-to`: `(experiment, config, combinations) -> [push record, ...]`
PUSH_EXPORTS = "trainers.delivery.run_exports:push_exports"


@dataclasses.dataclass(frozen=True, eq=False)
class Spec:
    """What an experiment's command line needs, importable without TensorFlow.

    Attributes:
        name: str. The experiment's tag in `config.json`, e.g. `"channelwise"`.
        config_class: its config dataclass (a `trainers.framework.config.TrainConfig`).
        presets: dict. `{preset name: field overrides}`, `"default"` among them.
        description: str. The `--help` text's first line.
        prog: str. The command in usage lines, e.g. `"python -m trainers.channelwise"`.
        experiment: str. Where the `Experiment` is, `"package.module:NAME"`.
    """

    name: str
    config_class: type
    presets: dict
    description: str
    prog: str
    experiment: str

    def load(self):
        """The experiment object (importing its module, which imports TensorFlow)."""
        return resolve(self.experiment)

    def package_getattr(self, package):
        """A module-level `__getattr__` for the experiment's package `package`: its
        `EXPERIMENT` is imported on first use (the hooks import TensorFlow, and the
        command line parses its flags with this spec without it)."""

        def __getattr__(name):
            if name == "EXPERIMENT":
                return self.load()
            raise AttributeError(f"module {package!r} has no attribute {name!r}")

        return __getattr__


def experiment(name):
    """The registered experiment `name` (its package's `EXPERIMENT`).

    Raises:
        ValueError: `name` is not registered, or its package declares no `EXPERIMENT`.
    """
    if name not in EXPERIMENTS:
        raise ValueError(
            f"`experiment` must be one of {sorted(EXPERIMENTS)}. Received: experiment={name!r}"
        )
    found = getattr(importlib.import_module(EXPERIMENTS[name]), "EXPERIMENT", None)
    if found is None:
        raise ValueError(f"{EXPERIMENTS[name]} declares no EXPERIMENT. Received: {name!r}")
    return found


def resolve(target):
    """The object a `"package.module:name"` string names (imported on first use)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


__all__ = ["EXPERIMENTS", "PUSH_EXPORTS", "Spec", "experiment", "resolve"]
