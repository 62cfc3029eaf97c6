"""The channel-wise experiment (Table 1): `python -m trainers.channelwise`.

`experiment` (the hooks; its docstring has the commands and their cost), `config` (every
knob, presets, combinations), `data` (grid canvases, the class-per-cell evaluator),
`results` (seeds aggregated, the poster's numbers), `report`, `curves` (learning curves)
and `summaries` (TensorBoard images).
"""

from trainers.channelwise.experiment import EXPERIMENT
from trainers.framework import cli


def main(argv=None):
    """`python -m trainers.channelwise` and the `tfposenc-channelwise` console script."""
    return cli.main(EXPERIMENT, argv)


__all__ = ["EXPERIMENT", "main"]
