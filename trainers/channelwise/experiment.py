"""The channel-wise experiment, the paper's Table 1: is position encoded channel-wise?

For every grid size k, padding mode, network and task (location, image class) and seed
this trains a network on k x k grid canvases of raw pixels (the models normalise
inside), evaluates it as the authors did (the test split over k^2 passes with fresh
random placements, averaged; the model of the last epoch, no selection), and writes
`results.md` (Table 1's layout, what each row trained with, geometry, what each row
isolates, border rows, the claims checked against a null that can fail, learning
curves), `results.json` (one record per combination over seeds, and `claims`),
figures, per-cell heat maps (location and class), TensorBoard events, JSON-lines
metrics, `.keras` models and SavedModel exports.

Networks: `gapnet` (the paper's: 3x3 head conv, global pooling, no dense),
`gapnet1x1` (1x1 head: the same function as `classifier`), `classifier` (pooling and
dense: the un-shuffled control), `permutenet` (the pooled channels shuffled on every
call, then dense), `sumnet` (a dense layer on the channel sum: the noise-free
PermuteNet) and `sortnet` (the pooled channels sorted, then dense; beyond the paper).
Budgets are matched: every network trains the same steps with the same optimizer
(`--order-free-*` gives the order-free ones their own, and the report says the rows
are then not matched). PermuteNet is scored under `--permutations` distinct
permutations per test pass (`trainers.channelwise.evaluation`). The border rows train
GAPNet for location at `--border-grid-size` with circular padding, circular +
BlurPool and circular + APS (zero for reference).

Commands and cost (measured on the 2-core CPU machine this project is developed on,
shared; README.md gives the default run from a fresh clone on an idle machine):

    python -m trainers.channelwise                    # default: digits, 24 runs, 4,320
                                                      # steps (~10 min idle, not re-measured)
    python -m trainers.channelwise --preset long      # k = 3, 5; classifier, permutenet,
                                                      # sumnet; 2,160 matched steps; k = 3
                                                      # half: 24 min at load 10-16
    python -m trainers.channelwise --seeds 0 1 2      # three seeds, mean +/- std, ~30 min
    python -m trainers.channelwise --border-grid-size 4  # adds the border rows, ~1.2 min
    python -m trainers.channelwise --preset smoke     # ~30 s; what the tests run
    python -m trainers.channelwise --preset paper     # CIFAR-10 at paper scale (GPU)

A run killed at any point resumes when started again with the same command and `--out`.
"""

import dataclasses
import os

import keras

from tfposenc.data import info
from tfposenc.models import Classifier, GAPNet, PermuteNet, SortNet, SumNet, build_backbone
from trainers.channelwise.claims import check
from trainers.channelwise.config import (
    BORDER_ROWS,
    ORDER_FREE,
    READOUT,
    SPEC,
    Combination,
)
from trainers.channelwise.data import canvases
from trainers.channelwise.evaluation import score
from trainers.channelwise.report import report
from trainers.channelwise.results import aggregate
from trainers.channelwise.summaries import GridSummaries, PermutedValidation, StopWhenFlat
from trainers.framework.experiment import Budget, Experiment, Summary, steps_for


class Channelwise(Experiment, spec=SPEC):
    def combinations(self, config):
        table = [
            Combination(k, mode, network, task, seed=seed)
            for seed in config.seed_list
            for k in config.grid_sizes
            for mode in config.padding_modes
            for network in config.networks
            for task in config.tasks
        ]
        border = []
        if config.border_grid_size is not None:
            border = [
                Combination(config.border_grid_size, mode, "gapnet", "location", sampling, seed)
                for seed in config.seed_list
                for mode, sampling in BORDER_ROWS
            ]
        return table + [c for c in border if c not in table]

    def input_shape(self, config, combination):
        size = (config.cell_size or info(config.dataset).image_size[0]) * combination.grid_size
        return (size, size, 3)

    def num_outputs(self, config, combination):
        if combination.task == "location":
            return combination.grid_size**2
        return info(config.dataset).num_classes

    def build_model(self, config, combination):
        options = dict(
            padding_mode=combination.padding_mode,
            downsampling=combination.downsampling,
            input_shape=self.input_shape(config, combination),
        )
        if config.backbone == "nin":
            backbone = build_backbone("nin", width=12 * config.width, **options)
        else:
            backbone = build_backbone(
                config.backbone, stem=config.stem, width=config.width, **options
            )
        meta, network = info(config.dataset), combination.network
        outputs = self.num_outputs(config, combination)
        stats = dict(mean=meta.mean, std=meta.std, name=network)
        if network in ("gapnet", "gapnet1x1"):
            return GAPNet(
                backbone, outputs, head_kernel_size=3 if network == "gapnet" else 1, **stats
            )
        if network in READOUT:
            stats["readout_init"] = config.readout_init
        if network == "classifier":
            return Classifier(backbone, outputs, **stats)
        if network == "sortnet":
            return SortNet(backbone, outputs, **stats)
        if network == "sumnet":
            return SumNet(backbone, outputs, **stats)
        return PermuteNet(backbone, outputs, seed=combination.seed, **stats)

    def budget(self, config, combination):
        """`epochs` for every network (matched; `order_free_epochs` when set), one pass
        over `train_examples` canvases per epoch."""
        epochs = config.epochs
        if combination.network in ORDER_FREE and config.order_free_epochs is not None:
            epochs = config.order_free_epochs
        examples = config.train_examples or info(config.dataset).splits["train"]
        return Budget(epochs, steps_for(examples, config.batch_size))

    def optimizer(self, config, combination, budget):
        rate, beta = config.learning_rate, config.beta_1
        if combination.network in ORDER_FREE:
            if config.order_free_learning_rate is not None:
                rate = config.order_free_learning_rate
            if config.order_free_beta_1 is not None:
                beta = config.order_free_beta_1
        return keras.optimizers.Adam(rate, beta_1=beta, beta_2=config.beta_2)

    def data(self, config, combination):
        return canvases(config, combination)

    def test_element(self, config, combination):
        """Class-task test batches also carry each canvas's cell (per-cell accuracy)."""
        if combination.task == "class":
            return ("images", "labels", "cells")
        return ("images", "labels")

    def hparams(self, config, combination):
        return {
            **dataclasses.asdict(combination),
            "group": combination.group,
            "backbone": config.backbone,
            "width": config.width,
            "dataset": config.dataset,
        }

    def callbacks(self, config, combination, data, log_dir):
        # Per-epoch heat maps cost a validation pass each; the order-free networks train
        # many epochs, so theirs is only the final one (`heatmaps/` in the report).
        heatmap = combination.task == "location" and combination.network not in ORDER_FREE
        k = combination.grid_size
        found = [
            GridSummaries(log_dir, data.extra["samples"], data.validation, k, heatmap),
            PermutedValidation(
                log_dir,
                data.validation,
                combination.network,
                config.permutations,
                combination.seed + 1,
            ),
        ]
        if config.stop_when_flat is not None:  # after PermutedValidation: reads its value
            history = os.path.join(config.out, "metrics.jsonl")  # a resume's earlier epochs
            found.append(StopWhenFlat(config.stop_when_flat, history, combination.name))
        return found

    def evaluate(self, config, combination, model, data):
        """Test accuracy over k^2 placement passes; PermuteNet under `permutations`
        distinct permutations of the pooled channels (`trainers.channelwise.evaluation`)."""
        k = combination.grid_size
        if config.verbose != "0":
            print(f"   {combination.name}: test ({k * k} passes)", flush=True)
        yield from score(
            model, data.test, combination.network, k, config.permutations, combination.seed + 2
        )
        yield "chance", 100.0 / self.num_outputs(config, combination)
        yield "feature_map_size", list(model.backbone.output_shape[1:3])

    def aggregate(self, config, records):
        """One record per combination over its seeds (`trainers.channelwise.results`)."""
        return aggregate(records)

    def summarize(self, config, records, run_dir):
        """`results.md`'s section and figures (`trainers.channelwise.report`) and
        `claims` in `results.json`: each `{"claim", "verdict", "evidence"}`
        (`trainers.channelwise.claims`), checked once for both."""
        claims = check(records, config.matched)
        return Summary(report(config, records, run_dir, claims), {"claims": claims})


EXPERIMENT = Channelwise()
