"""The position attack's measurements and report: ranking, sweep, artifacts, figures.

`attack` runs on one trained model and yields its result values (and draws the figures
that need the model: the qualitative grid and the feature maps, to PNG and TensorBoard);
`report` renders `results.md` tables and the sweep curves from the results alone;
`finish_results` adds the top-level `sweep` and `artifacts` lists to `results.json`.
"""

import json
import math
import os

import numpy as np

from trainers import reports

PERCENT = 100.0


def _tensorboard_image(log_dir, tag, figure):
    import tensorflow as tf

    writer = tf.summary.create_file_writer(os.path.join(log_dir, "images"))
    with writer.as_default():
        image = tf.image.decode_png(reports.figure_png(figure), channels=4)
        tf.summary.image(tag, image[None], step=0)
    writer.flush()


class Traced:
    """A task seen through traced inference calls, for the library's analysis functions:
    `model(images, training=False)` and `pooled_features` run as one `tf.function` each
    (the ablation mask is a variable, so `ablate` takes effect without retracing)."""

    def __init__(self, model):
        import tensorflow as tf

        self.model = model
        self._call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        self._pooled = tf.function(
            lambda x: model.pooled_features(x, training=False), reduce_retracing=True
        )

    def __call__(self, images, training=False):
        return self._call(images)

    def pooled_features(self, images, training=False):
        return self._pooled(images)

    def ablate(self, channels=()):
        self.model.ablate(channels)

    @property
    def ablated_channels(self):
        return self.model.ablated_channels


def attack(config, combination, model, data, input_shape):
    """Yields `(name, value)`: the unablated metrics, `ranking` (top channels), `sweep`
    records, `artifacts` per stage, and the figure files written."""
    from tfposenc import analysis
    from trainers.attack_data import segmentation_classes

    padding, task = combination.padding_mode, combination.task
    if task == "location":
        evaluate = analysis.GridRegionAccuracy(config.location_grid_size)
    else:
        evaluate = analysis.SegmentationRegionIoU(*segmentation_classes(config))
    traced = Traced(model)
    order, scores = analysis.rank_position_channels(traced, data.extra["ranking"], config.ranking)
    records = analysis.ablation_sweep(
        traced, data.test, order, config.fractions, config.random_draws, evaluate, seed=config.seed
    )
    for record in records:
        record.update(padding=padding, task=task)
    baseline = {r["region"]: r["value"] for r in records if r["fraction"] == 0}
    baseline = baseline or evaluate(traced, data.test)
    yield evaluate.metric, {region: PERCENT * value for region, value in baseline.items()}
    yield "ranking", {"method": config.ranking, "top": order[:16].tolist(),
                      "top_scores": [float(scores[c]) for c in order[:16]]}  # fmt: skip
    yield "sweep", records
    artifacts = analysis.border_artifact_scores(model, input_shape, value=config.constant_value)
    yield "artifacts", [{"padding": padding, "task": task, **a} for a in artifacts]
    log_dir = os.path.join(config.out, "tensorboard", combination.name)
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
            config, model, images, samples[1].numpy(), order
        )
    for stem, figure in figures.items():
        reports.save_figure(figure, os.path.join(config.out, f"{stem}.png"))
        _tensorboard_image(log_dir, stem, figure)
    yield "figures", sorted(f"{stem}.png" for stem in figures)


def qualitative_figure(config, model, images, labels, order):
    """The poster's Figure 5: canvas, ground truth, prediction after random removal and
    after ranked removal of `config.figure_fraction` of the channels (one row each)."""
    from tfposenc.analysis.ablation_sweep import count_for, random_draws_for

    count = count_for(config.figure_fraction, len(order))
    random_set = random_draws_for(len(order), count, 1, config.seed)[0]
    predictions = {}
    previous = list(model.ablated_channels)
    try:
        for name, channels in (("random", random_set), ("ranked", order[:count].tolist())):
            model.ablate(channels)
            predictions[name] = np.asarray(model(images, training=False)).argmax(-1)
    finally:
        model.ablate(previous)
    from trainers.attack_data import segmentation_classes

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


def sweep_figure(records, title):
    """Metric (%) against the fraction removed: ranked vs random with a +/- std band, one
    panel per region."""
    regions = list(dict.fromkeys(r["region"] for r in records))
    figure = reports.new_figure((3.2 * len(regions), 3.0))
    axes = figure.subplots(1, len(regions), squeeze=False)[0]
    for axis, region in zip(axes, regions):
        for selection, style in (("ranked", "-o"), ("random", "--s")):
            rows = sorted(
                (r["fraction"], r["value"], r["std"])
                for r in records
                if r["region"] == region and r["selection"] == selection
            )
            x = np.array([PERCENT * f for f, _, _ in rows])
            y = np.array([PERCENT * v for _, v, _ in rows])
            s = np.array([PERCENT * d for _, _, d in rows])
            axis.plot(x, y, style, markersize=3, label=selection)
            if selection == "random":
                axis.fill_between(x, y - s, y + s, alpha=0.25)
        axis.set_title(region, fontsize=9)
        axis.set_xlabel("channels removed (%)", fontsize=8)
        axis.set_ylim(0, 105)
    axes[0].set_ylabel(f"{records[0]['metric']} (%)", fontsize=8)
    axes[0].legend(fontsize=7)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure


def _at(records, fraction, selection, region):
    for r in records:
        close = math.isclose(r["fraction"], fraction, abs_tol=1e-9)
        if close and r["selection"] == selection and r["region"] == region:
            return r
    return None


def _cell(records, fraction, region):
    ranked, random = (_at(records, fraction, s, region) for s in ("ranked", "random"))
    if ranked is None:
        return ""
    return (
        f"{PERCENT * ranked['value']:.1f} / {PERCENT * random['value']:.1f} "
        f"± {PERCENT * random['std']:.1f}"
    )


def expected_effects(results):
    """Markdown lines: each expected effect, as measured (held or not), never forced."""
    lines = []
    for r in results:
        records = [x for x in r["sweep"] if x["fraction"] > 0]
        overall = [x for x in records if x["region"] == "overall"]
        fractions = sorted({x["fraction"] for x in overall})
        worse = [f for f in fractions
                 if _at(overall, f, "ranked", "overall")["value"]
                 < _at(overall, f, "random", "overall")["value"]]  # fmt: skip
        lines.append(
            f"- {r['combination']}: ranked removal hurts more than random at {len(worse)} of "
            f"{len(fractions)} fractions > 0 (at {', '.join(f'{PERCENT * f:g}%' for f in worse) or 'none'})."
        )
        outer, inner = (
            ("periphery", "centre") if r["task"] == "segmentation" else ("border", "inner")
        )
        base = {
            x["region"]: x["value"]
            for x in r["sweep"]
            if x["fraction"] == 0 and x["selection"] == "ranked"
        }
        if outer in base and inner in base and not math.isnan(base[inner]):
            more = [f for f in fractions
                    if base[outer] - _at(records, f, "ranked", outer)["value"]
                    > base[inner] - _at(records, f, "ranked", inner)["value"]]  # fmt: skip
            lines.append(
                f"- {r['combination']}: under ranked removal the {outer} loses more than the "
                f"{inner} at {len(more)} of {len(fractions)} fractions."
            )
    artifacts = [a for r in results for a in r["artifacts"]]
    for padding in dict.fromkeys(a["padding"] for a in artifacts):
        mine = [a for a in artifacts if a["padding"] == padding]
        contrast = np.nanmean([a["border_contrast"] for a in mine])
        largest = max(a["constant_input_std"] for a in mine)
        lines.append(
            f"- {padding} padding: mean border contrast {contrast:.4f}, largest spatial std on "
            f"a constant input {largest:.2e}."
        )
    return lines


def report(config, results, run_dir):
    """The attack's section of `results.md`; draws `sweep-<combination>.png`."""
    header = ["padding", "task", "region", "unablated"]
    header += [f"{PERCENT * f:g}% ranked / random" for f in config.table_fractions]
    rows = []
    for r in results:
        records = r["sweep"]
        figure = sweep_figure(records, f"{r['combination']}: {config.ranking} ranking")
        reports.save_figure(figure, os.path.join(run_dir, f"sweep-{r['combination']}.png"))
        for region in dict.fromkeys(x["region"] for x in records):
            base = _at(records, 0.0, "ranked", region)
            cells = [_cell(records, f, region) for f in config.table_fractions]
            unablated = "" if base is None else f"{PERCENT * base['value']:.1f}"
            rows.append([r["padding_mode"], r["task"], region, unablated, *cells])
    artifact_rows = [
        [a["padding"], a["task"], a["stage"], f"{a['constant_input_std']:.2e}",
         f"{a['border_contrast']:.4f}"]
        for r in results for a in r["artifacts"]
    ]  # fmt: skip
    return [
        f"# Position attack ({config.dataset} segmentation, {config.location_dataset} "
        f"location; {config.backbone} width {config.width})",
        "",
        f"Channels ranked by `{config.ranking}` on {config.rank_examples} training canvases; "
        f"removed (zeroed) with no retraining. Values in %: mIoU (segmentation) or accuracy "
        f"(location) on the test canvases; random is the mean ± std of {config.random_draws} draws.",
        "",
        *reports.markdown_table(header, rows),
        "",
        f"## Border artifacts (constant input, every pixel {config.constant_value:g})",
        "",
        *reports.markdown_table(
            ("padding", "task", "stage", "constant-input std", "border contrast"), artifact_rows
        ),
        "",
        "## Expected effects, as measured",
        "",
        *expected_effects(results),
    ]


def finish_results(run_dir):
    """Adds the lists `sweep` (records `{padding, task, selection, fraction, region,
    metric, value, std}` and the draws) and `artifacts` to `run_dir/results.json`."""
    from trainers import core

    path = os.path.join(run_dir, "results.json")
    with open(path) as f:
        summary = json.load(f)
    summary["sweep"] = [x for r in summary["results"] for x in r["sweep"]]
    summary["artifacts"] = [a for r in summary["results"] for a in r["artifacts"]]
    core.write_json(path, summary)
    return summary
