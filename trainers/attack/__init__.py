"""The position attack: `python -m trainers.attack`.

`experiment` (the hooks; its docstring has the commands and their cost), `config` (every
knob, presets, combinations), `data` (segmentation and grid canvases, Cityscapes),
`measure` (ranking, sweep, artifacts, figures of one model) and `report`.
"""

from trainers.attack.config import SPEC
from trainers.framework import cli


def main(argv=None):
    """`python -m trainers.attack` and the `tfposenc-attack` console script."""
    return cli.main(SPEC, argv)


def __getattr__(name):
    """`EXPERIMENT`, the experiment's hooks, imported on first use: they import
    TensorFlow, and the command line parses its flags (`SPEC`) without it."""
    if name == "EXPERIMENT":
        return SPEC.load()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["EXPERIMENT", "SPEC", "main"]
