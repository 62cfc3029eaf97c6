"""The channel-wise experiment (Table 1): `python -m trainers.channelwise`.

`experiment` (the hooks; its docstring has the commands and their cost), `config` (every
knob, presets, combinations), `data` (grid canvases), `evaluation` (scoring, PermuteNet
under many permutations), `results` (seeds aggregated, the poster's numbers), `claims`
(the claims checked against a null that can fail), `report`, `curves` (learning curves)
and `summaries` (TensorBoard images, the per-epoch permuted accuracy).
"""

from trainers.channelwise.config import SPEC
from trainers.framework import cli


def main(argv=None):
    """`python -m trainers.channelwise` and the `tfposenc-channelwise` console script."""
    return cli.main(SPEC, argv)


# `EXPERIMENT`: the hooks, imported on first use (`Spec.package_getattr`).
__getattr__ = SPEC.package_getattr(__name__)


__all__ = ["EXPERIMENT", "SPEC", "main"]
