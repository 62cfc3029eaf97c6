"""The position attack: `python -m trainers.attack`.

`experiment` (the hooks; its docstring has the commands and their cost), `config` (every
knob, presets, combinations), `data` (segmentation and grid canvases, Cityscapes),
`measure` (ranking, sweep, artifacts, figures of one model) and `report`.
"""

from trainers.attack.experiment import EXPERIMENT
from trainers.framework import cli


def main(argv=None):
    """`python -m trainers.attack` and the `tfposenc-attack` console script."""
    return cli.main(EXPERIMENT, argv)


__all__ = ["EXPERIMENT", "main"]
