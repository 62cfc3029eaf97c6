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


# `EXPERIMENT`: the hooks, imported on first use (`Spec.package_getattr`).
__getattr__ = SPEC.package_getattr(__name__)


__all__ = ["EXPERIMENT", "SPEC", "main"]
