"""The position attack on one model: ranking, sweep, artifacts and the model's figures.

`attack` runs on one trained model and yields its result values and the figures that
need the model (the qualitative grid and the feature maps; the runner writes them to PNG
and TensorBoard).
`trainers.attack.report` renders the tables and sweep curves from the records alone.
"""

import keras
import numpy as np

from tfposenc import analysis
from tfposenc.analysis._batches import iterate_batches, logits
from tfposenc.analysis.ablation_sweep import count_for, random_draws_for
from tfposenc.metrics.accuracy import top1_hits
from tfposenc.metrics.traced import traced
from tfposenc.models import build_backbone
from tfposenc.vocabulary import PADDING_MODES
from trainers.attack.config import Combination
from trainers.attack.data import segmentation_classes
from trainers.framework import reports

PERCENT = 100.0


def evaluator(config, combination):
    """The region evaluator of `combination`'s task and its chance level (0..1)."""
    if combination.task != "segmentation":
        k = config.location_grid_size
        return analysis.GridRegionAccuracy(k), 1.0 / k**2
    classes, ignore = segmentation_classes(config)
    grid = None if config.dataset == "cityscapes" else config.grid_size
    return analysis.SegmentationRegionIoU(classes, ignore, grid_size=grid), 1.0 / classes


def attack(config, combination, model, data, input_shape):
    """Yields `(name, value)`: the unablated metric per region as flat floats in %
    (`miou_overall`, `miou_border`, ... / `accuracy_...`), `chance`, `ranking` (top
    channels of every ranking; the signed left / right flip rankings for segmentation),
    `flip_magnitude_spearman`, `sweep` records, `artifacts` per stage, and the figure
    files written."""
    padding, task = combination.padding_mode, combination.task
    evaluate, chance = evaluator(config, combination)
    fast = traced(model)
    rankings = {
        method: analysis.rank_position_channels(fast, data.extra["ranking"], method)
        for method in dict.fromkeys((*config.ranking, "flip", "magnitude"))
    }
    if task == "segmentation":  # the authors' signed rankings (flip_right = -flip_left)
        rankings["flip_left"] = analysis.rank_position_channels(
            fast, data.extra["ranking"], "flip_left"
        )
        scores = -rankings["flip_left"][1]
        rankings["flip_right"] = (np.argsort(-scores, kind="stable").astype("int64"), scores)
    order = rankings[config.ranking[0]][0]
    controls = {m: rankings[m][0] for m in config.ranking[1:]}
    judged = claim_fractions(config)
    records = analysis.ablation_sweep(
        fast, data.test, order, config.fractions, config.random_draws, evaluate,
        seed=combination.seed, controls=controls, claim_fractions=judged,
        claim_draws=config.claim_draws, magnitudes=rankings["magnitude"][1],
    )  # fmt: skip
    for record in records:
        record.update(padding=padding, task=task, ranking=config.ranking[0])
    if task != "segmentation":  # per-canvas hits for the paired magnitude claim
        sets = {"ranked": order, **controls}
        for record in records:
            if record["region"] == "overall" and record["fraction"] in judged:
                if record["selection"] in sets:
                    channels = sets[record["selection"]][: record["num_channels"]]
                    record["canvas_values"] = canvas_hits(fast, data.test, channels)
    baseline = {r["region"]: r["value"] for r in records if r["fraction"] == 0}
    baseline = baseline or evaluate(fast, data.test)
    for region, value in baseline.items():
        yield f"{evaluate.metric}_{region}", PERCENT * value
    yield "chance", PERCENT * chance
    yield (
        "ranking",
        {
            method: {"top": o[:16].tolist(), "top_scores": [float(s[c]) for c in o[:16]]}
            for method, (o, s) in rankings.items()
        },
    )
    yield (
        "flip_magnitude_spearman",
        analysis.spearman(rankings["flip"][1], rankings["magnitude"][1]),
    )
    yield "sweep", records
    artifacts = analysis.border_artifact_scores(
        model, input_shape, value=config.constant_value,
        random_inputs=config.artifact_inputs, seed=combination.seed,
    )  # fmt: skip
    yield "artifacts", [{"padding": padding, "task": task, **a} for a in artifacts]
    figures = {}
    samples = next(iter(data.extra["samples"]))
    images = samples[0].numpy()
    for label, picture in (
        ("sample", images[:1]),
        ("constant", np.full_like(images[:1], config.constant_value)),
    ):
        maps = analysis.feature_maps(model, picture)
        title = f"{combination.name}: feature maps, {label} input"
        figures[f"feature-maps-{combination.name}-{label}"] = analysis.plot_feature_maps(
            maps, picture, title=title
        )
    if task == "segmentation":
        figures[f"qualitative-{padding}"] = qualitative_figure(
            config, model, images, samples[1].numpy(), order, combination.seed
        )
    yield "figures", figures  # the runner writes them: PNG files and TensorBoard images


def claim_fractions(config):
    """The sweep fractions nearest `config.claim_fractions` (where claims are judged)."""
    swept = [f for f in config.fractions if f > 0]
    if not swept:
        return ()
    return tuple(
        dict.fromkeys(min(swept, key=lambda f: abs(f - c)) for c in config.claim_fractions)
    )


def canvas_hits(model, dataset, channels):
    """Per-canvas hits `(images, cells)` (0/1) of a location model with `channels`
    removed: column `c` holds the test canvases of cell `c` in the dataset's order (each
    test image is placed once in every cell). The model's previous ablation is restored."""
    previous = list(model.ablated_channels)
    cells, correct = [], []
    try:
        model.ablate([int(c) for c in channels])
        for images, labels, _ in iterate_batches(dataset):
            hits = top1_hits(logits(model, images), labels)
            correct.append(hits)
            cells.append(labels.reshape(hits.shape))
    finally:
        model.ablate(previous)
    cells, correct = np.concatenate(cells), np.concatenate(correct).astype("float64")
    columns = [correct[cells == c] for c in np.unique(cells)]
    size = min(len(c) for c in columns)
    return np.stack([c[:size] for c in columns], axis=1).tolist()


def architecture_artifacts(config, input_shape):
    """Border artifacts of untrained backbones (seeded, fresh batch-norm statistics) of
    both tasks in every padding mode of `config.architecture_padding_modes` (default:
    all four): what the padding alone does to a constant input and
    to random ones. `input_shape(config, combination)` is the experiment's (its
    `summarize` computes this once per run, for the report and `results.json`)."""
    rows = []
    for task in ("segmentation", "location"):
        shape = input_shape(config, Combination("zero", task))
        for mode in (m for m in PADDING_MODES if m in config.architecture_padding_modes):
            keras.utils.set_random_seed(config.seed)
            options = {"output_stride": config.output_stride} if task == "segmentation" else {}
            backbone = build_backbone(
                config.backbone, stem=config.stem, width=config.width, padding_mode=mode,
                input_shape=shape, **options,
            )  # fmt: skip
            scores = analysis.border_artifact_scores(
                backbone, shape, value=config.constant_value / 255.0,
                random_inputs=config.artifact_inputs, noise_range=(-1.0, 1.0), seed=config.seed,
            )  # fmt: skip
            rows += [{"padding": mode, "task": task, "trained": False, **a} for a in scores]
    return rows


def qualitative_figure(config, model, images, labels, order, seed=0):
    """The poster's Figure 5: canvas, ground truth, prediction after random removal (a
    draw of `seed`, the combination's) and after ranked removal of
    `config.figure_fraction` of the channels (one row each)."""
    count = count_for(config.figure_fraction, len(order))
    random_set = random_draws_for(len(order), count, 1, seed)[0]
    predictions = {}
    previous = list(model.ablated_channels)
    try:
        for name, channels in (("random", random_set), ("ranked", order[:count].tolist())):
            model.ablate(channels)
            predictions[name] = np.asarray(model(images, training=False)).argmax(-1)
    finally:
        model.ablate(previous)

    classes, ignore = segmentation_classes(config)
    labels = np.ma.masked_equal(labels, -1 if ignore is None else ignore)
    figure = reports.new_figure((7.2, 1.9 * len(images)))
    axes = figure.subplots(len(images), 4, squeeze=False)
    titles = ("canvas", "ground truth", f"random {count} removed", f"ranked {count} removed")
    for row in range(len(images)):
        shown = (np.clip(images[row] / 255.0, 0, 1), labels[row],
                 predictions["random"][row], predictions["ranked"][row])  # fmt: skip
        for column, picture in enumerate(shown):
            axis = axes[row, column]
            if column:
                axis.imshow(picture, cmap="tab20", vmin=0, vmax=classes - 1, interpolation="none")
            else:
                axis.imshow(picture)
            axis.set_axis_off()
            if row == 0:
                axis.set_title(titles[column], fontsize=8)
    figure.tight_layout()
    return figure
