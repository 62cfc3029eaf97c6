"""One helper for the experiments' smoke runs in the tests: a config from a preset and a
module-scoped fixture that runs it once."""

import time

import pytest

from trainers.framework import runner


def smoke_config(experiment, out, **overrides):
    """`experiment`'s smoke preset with `out` and `overrides`."""
    values = {**experiment.presets["smoke"], "out": str(out), **overrides}
    return experiment.config_class(**values)


def smoke_fixture(experiment, **overrides):
    """A module-scoped fixture: `(out, per-combination records, wall seconds)` of one
    smoke run of `experiment`."""

    @pytest.fixture(scope="module")
    def smoke_run(tmp_path_factory):
        out = tmp_path_factory.mktemp(f"{experiment.name}-smoke")
        start = time.time()
        records = runner.run(experiment, smoke_config(experiment, out, **overrides))
        return out, records, time.time() - start

    return smoke_run


__all__ = ["smoke_config", "smoke_fixture"]
