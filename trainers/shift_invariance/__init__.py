"""The shift-invariance experiment (Table 2): `python -m trainers.shift_invariance`.

`experiment` (the hooks; its docstring has the commands and their cost), `config` (every
knob, presets, combinations), `data` (resized pixels, crops), `evaluation` (top-1 and
the consistency measures of one model) and `report` (the table and the curve).
"""

from trainers.framework import cli
from trainers.shift_invariance.config import SPEC


def main(argv=None):
    """`python -m trainers.shift_invariance` and the `tfposenc-shift-invariance` script."""
    return cli.main(SPEC, argv)


# `EXPERIMENT`: the hooks, imported on first use (`Spec.package_getattr`).
__getattr__ = SPEC.package_getattr(__name__)


__all__ = ["EXPERIMENT", "SPEC", "main"]
