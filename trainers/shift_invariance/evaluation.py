"""The shift-invariance experiment's measurements and its `results.md` section.

Consistency here follows `tfposenc.augment.shift` (views cut by `apply_shift`) with one
convention for every input size, Zhang's crop protocol made possible at 32x32: each test
image is padded with black pixels (`PAD` on every side) and two windows of the original
size are cut at independent offsets, uniform per image and axis, so that "Cons.m" takes
offsets `o - m // 2` with `o` in `[0, m)`: the views differ by at most `m - 1` pixels per
axis, and for `m = 8` this is "pad 4 pixels, crop at offsets in [0, 8)". The black band
is the fill, on every side over many draws (the digits' background; for CIFAR it matches
the zero-padded random crops of the training recipe). Offsets come from a numpy
generator seeded per pass, so every method sees the same views. Predictions go through
`trainers.evaluators.predictor` (one traced function, no Python work per image).
"""

import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tfposenc.augment import apply_shift
from tfposenc.models import AugShift
from trainers import evaluators, reports, runner

PAD = 8  # black pixels added on every side: enough for Cons.1 .. Cons.16
CURVE_SHIFTS = tuple(range(1, 2 * PAD + 1))
# The poster's Table 2 (ResNet-18, top-1 % / Cons.8 %) and third-party CIFAR-10 ResNet-18
# reruns quoted by the APS / LPS papers (accuracy / linear-shift consistency).
POSTER = {
    "cifar100": {"baseline": (72.6, 70.1), "augshift": (72.6, 85.6), "blurpool": (72.4, 78.2)},
    "cifar10": {"baseline": (93.1, 90.8), "augshift": (92.1, 94.8), "blurpool": (92.5, 92.5)},
}
RERUNS = {"cifar10": {"baseline": (91.6, 87.4), "blurpool": (93.3, 90.5), "aps": (94.1, 92.7)}}


def classifier_of(model):
    """The trained network: `model.classifier` for AugShift, else `model` itself."""
    return model.classifier if isinstance(model, AugShift) else model


class AugShiftTrainer(AugShift):
    """`AugShift` whose `save` writes the trained classifier (what predicts and exports:
    the `.keras` file then loads as a `Classifier`, like every other row's)."""

    def save(self, filepath, *args, **kwargs):
        return self.classifier.save(filepath, *args, **kwargs)


def crop_views(images, max_shift, rng):
    """Two crop-protocol views of `images` (module docstring) for Cons.`max_shift`."""
    n, size = int(images.shape[0]), tuple(images.shape[1:3])
    padded = tf.pad(images, [[0, 0], [PAD, PAD], [PAD, PAD], [0, 0]])
    base = PAD - max_shift // 2
    return [
        apply_shift(
            padded,
            rng.integers(0, max_shift, (n, 2)) + base,
            2 * PAD + 1,
            shift_mode="crop",
            crop_size=size,
        )
        for _ in range(2)
    ]


def circular_views(images, rng):
    """Two circular shifts (`np.roll`) of each image by independent offsets in
    `[0, size)` per axis: any circular shift."""
    n, size = int(images.shape[0]), int(images.shape[1])
    return [
        apply_shift(images, rng.integers(0, size, (n, 2)), size, shift_mode="circular")
        for _ in range(2)
    ]


def agreement(model, dataset, make_views, passes, seed):
    """Percentage of images whose two views get the same top-1 class, over `passes`
    passes over `dataset` (`(images, labels)` batches); `make_views(images, rng)`."""
    predict = evaluators.predictor(model)
    agree = total = 0
    for index in range(passes):
        rng = np.random.default_rng([seed, index])
        for images, _ in dataset:
            first, second = make_views(tf.cast(images, tf.float32), rng)
            classes = np.argmax(np.asarray(predict(tf.concat([first, second], 0))), -1)
            n = len(classes) // 2
            agree += int(np.sum(classes[:n] == classes[n:]))
            total += n
    return 100.0 * agree / max(total, 1)


def consistency_curve(model, dataset, shifts, passes, seed):
    """`{m: Cons.m}` for every `m` in `shifts`; `passes(m)` passes each."""
    return {
        m: agreement(model, dataset, lambda x, rng, m=m: crop_views(x, m, rng), passes(m), seed)
        for m in shifts
    }


def circular_consistency(model, dataset, passes, seed):
    return agreement(model, dataset, circular_views, passes, seed)


class StepTimer(keras.callbacks.Callback):
    """Wall time of training steps: the intervals between consecutive batch ends of an
    epoch (the first batch of each epoch, with its pipeline start-up, is not timed).
    `seconds()` is their median, robust to a shared machine's bursts; None before any."""

    def __init__(self):
        super().__init__()
        self.intervals = []
        self._last = None

    def on_epoch_begin(self, epoch, logs=None):
        self._last = None

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self._last is not None:
            self.intervals.append(now - self._last)
        self._last = now

    def seconds(self):
        return float(np.median(self.intervals)) if self.intervals else None


def logged_step_seconds(config, combination, steps):
    """Seconds per step from `metrics.jsonl` (the fastest epoch, validation included)
    when no step was timed in this process (a run resumed after its last epoch)."""
    with open(os.path.join(config.out, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    seconds = [r["epoch_seconds"] for r in records if r["combination"] == combination.name]
    return min(seconds) / steps


def evaluate(experiment, config, combination, model, data):
    """Yields top1, cons8, cons16, circular_consistency, step_seconds, examples and the
    curve; exports an AugShift row's classifier (the runner then finds the export done:
    it would otherwise export the wrapper it trained)."""
    classifier, seed = classifier_of(model), config.seed
    accuracy = dict(evaluators.classification(classifier, data.test))
    curve = consistency_curve(
        classifier,
        data.test,
        CURVE_SHIFTS,
        lambda m: config.passes if m in (8, 16) else config.curve_passes,
        seed,
    )
    timed = data.extra["timer"].seconds()
    yield "top1", accuracy["accuracy"]
    yield "cons8", curve[8]
    yield "cons16", curve[16]
    yield "circular_consistency", circular_consistency(classifier, data.test, config.passes, seed)
    yield "step_seconds", timed or logged_step_seconds(config, combination, data.steps_per_epoch)
    yield "examples", accuracy["examples"]
    yield "curve", {str(m): value for m, value in curve.items()}
    if config.export and classifier is not model:
        base = os.path.join(config.out, "exports", combination.name)
        runner.export(classifier, base, experiment.input_shape(config, combination))


def mean_std(values):
    """`"m"` for one value, `"m +/- s"` (sample std) for several."""
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{np.mean(values):.1f} +/- {np.std(values, ddof=1):.1f}"


def poster_shown(config, dataset):
    """The poster's numbers are shown only where dataset and network match theirs."""
    return dataset in POSTER and config.width == 64 and config.image_size == 32


def section(config, results, run_dir):
    """The markdown section: one table per dataset (mean +/- std over seeds), the
    convention, the poster's Table 2 where it applies; draws the curves."""
    lines = [f"# Shift invariance (ResNet-18 cifar stem, width {config.width})", ""]
    where = "the held-out training images" if config.test_on_holdout else "the test split"
    lines += [
        f"Top-1 and consistency in % on {where} ({config.image_size}x{config.image_size} "
        f"inputs). Cons.m: each test image padded with {PAD} black pixels, two "
        f"{config.image_size}x{config.image_size} windows at independent offsets in "
        "[-m/2, m/2) per axis (Zhang's crop protocol: the views differ by at most m - 1 px), "
        f"top-1 agreement over {config.passes} passes; circular: two circular shifts by any "
        f"amount, {config.passes} passes. Step time: median training step, relative to "
        f"`baseline`. Training views of AugShift rows: symmetric, offsets in "
        f"[-{config.train_max_shift}, {config.train_max_shift}], zero fill.",
    ]
    for dataset in config.dataset:
        rows = [r for r in results if r["dataset"] == dataset]
        lines += ["", *dataset_table(config, dataset, rows)]
        draw_curve(dataset, rows, os.path.join(run_dir, f"consistency_vs_shift_{dataset}.png"))
    return lines


def dataset_table(config, dataset, rows):
    methods = list(dict.fromkeys(r["method"] for r in rows))
    by = {m: [r for r in rows if r["method"] == m] for m in methods}
    base = [r["step_seconds"] for r in by.get("baseline", [])]
    seeds = sorted({r["seed"] for r in rows})
    header = ["method", "top-1", "Cons.8", "Cons.16", "circular", "step time"]
    show = poster_shown(config, dataset)
    if show:
        header += ["poster: top-1 / Cons.8"]
        header += ["third-party rerun: acc. / cons."] if dataset in RERUNS else []
    table = []
    for method in methods:
        group = by[method]
        cells = [method] + [
            mean_std([r[key] for r in group])
            for key in ("top1", "cons8", "cons16", "circular_consistency")
        ]
        step = np.mean([r["step_seconds"] for r in group])
        cells.append(f"{step / np.mean(base):.2f}x" if base else f"{1000 * step:.0f} ms")
        if show:
            for numbers in (POSTER, RERUNS) if dataset in RERUNS else (POSTER,):
                value = numbers[dataset].get(method)
                cells.append("" if value is None else f"{value[0]} / {value[1]}")
        table.append(cells)
    if show:
        caption = (
            f"`poster`: the ICCV 2021 poster's Table 2, ResNet-18 on {dataset} (its "
            "consistency: shifts of up to 8 px, exact views unstated); `rerun`: third-party "
            "CIFAR-10 ResNet-18 reruns quoted by the APS/LPS papers. Reference only, not "
            "measured by this run."
        )
    else:
        caption = (
            "The poster's Table 2 (ResNet-18 at width 64 on CIFAR-10/100 and ImageNet) is "
            f"not shown: this run ({dataset}, width {config.width}, "
            f"{config.image_size}x{config.image_size}) is not that setup."
        )
    return [
        f"## {dataset} (seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
        f"{'; mean +/- std' if len(seeds) > 1 else ''})",
        "",
        caption,
        "",
        *reports.markdown_table(header, table),
    ]


def draw_curve(dataset, rows, path):
    """Cons.m against m, one line per method (mean over seeds)."""
    series = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        group = [r["curve"] for r in rows if r["method"] == method]
        points = [(int(m), float(np.mean([c[m] for c in group]))) for m in group[0]]
        series[method] = ("-o", points)
    figure = reports.line_figure(
        series, "max shift m (Cons.m)", "consistency (%)", f"Consistency against shift, {dataset}"
    )
    reports.save_figure(figure, path)


__all__ = [
    "CURVE_SHIFTS",
    "PAD",
    "POSTER",
    "RERUNS",
    "AugShiftTrainer",
    "StepTimer",
    "agreement",
    "circular_consistency",
    "circular_views",
    "classifier_of",
    "consistency_curve",
    "crop_views",
    "dataset_table",
    "draw_curve",
    "evaluate",
    "logged_step_seconds",
    "mean_std",
    "poster_shown",
    "section",
]
