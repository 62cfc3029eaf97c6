"""The probe's `Experiment`: the hooks `trainers.framework.runner` calls.

The hooks that need TensorFlow are `trainers.probe.hooks`; the command line parses its
flags with `trainers.probe.config.SPEC` and imports this module after that.
"""

from trainers.framework.experiment import Budget, Experiment
from trainers.framework.seeds import aggregate as aggregate_seeds
from trainers.probe import hooks
from trainers.probe.config import SPEC, combinations
from trainers.probe.report import section


class Probe(Experiment, spec=SPEC):
    def __init__(self):
        # Each combination's conversion report, recorded when its model is built (the
        # same on every build: it depends on the architecture alone).
        self.changes = {}

    def combinations(self, config):
        return combinations(config)

    def input_shape(self, config, combination):
        return (config.input_size, config.input_size, 3)

    def build_model(self, config, combination):
        model, self.changes[combination.name] = hooks.build_model(config, combination)
        return model

    def data(self, config, combination):
        return hooks.data(config, combination)

    def budget(self, config, combination):
        """`--epochs` of `--pretrain-steps` steps; none (the model as loaded) for 0."""
        if config.pretrain_steps == 0:
            return Budget(0, 1)
        return Budget(config.epochs, config.pretrain_steps)

    def hparams(self, config, combination):
        return {"variant": combination.variant, "seed": combination.seed}

    def evaluate(self, config, combination, model, data):
        changes = self.changes.get(combination.name, [])
        yield from hooks.evaluate(config, combination, model, data, changes)

    def aggregate(self, config, records):
        """One record per model over its seeds (`trainers.framework.seeds.aggregate`): the
        lowest seed's values, the mean and `_std` of every read-out's location and digit
        accuracy, and the per-seed records under `seeds`."""
        readouts = [f"{n}_{t}" for n in config.readouts for t in ("location", "class")]
        return aggregate_seeds(records, readouts)

    def report(self, config, records, run_dir):
        return section(config, records, run_dir)

    def series(self, config, records):
        """Per combination, the classifier's location accuracy (%) against the number of
        top-ranked channels removed (the step axis is that number)."""
        return {
            r["combination"]: {
                "ablation/location_vs_channels_removed": [
                    (a["num_channels"], a["location"]) for a in r["ablation"]
                ]
            }
            for row in records
            for r in row["seeds"]
        }


EXPERIMENT = Probe()

__all__ = ["EXPERIMENT", "Probe"]
