"""The shift-invariance experiment's `results.md` section and its consistency curve.

One table per dataset (mean +/- std over seeds), the convention, the poster's Table 2
where the setup matches; `consistency_vs_shift_<dataset>.png`. No TensorFlow.
"""

import os

import numpy as np

from trainers.framework import reports

# The poster's Table 2 (ResNet-18, top-1 % / Cons.8 %) and third-party CIFAR-10 ResNet-18
# reruns quoted by the APS / LPS papers (accuracy / linear-shift consistency).
POSTER = {
    "cifar100": {"baseline": (72.6, 70.1), "augshift": (72.6, 85.6), "blurpool": (72.4, 78.2)},
    "cifar10": {"baseline": (93.1, 90.8), "augshift": (92.1, 94.8), "blurpool": (92.5, 92.5)},
}
RERUNS = {"cifar10": {"baseline": (91.6, 87.4), "blurpool": (93.3, 90.5), "aps": (94.1, 92.7)}}


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
        "inputs). Cons.m: two views of each test image shifted by independent offsets in "
        "[m/2 - m + 1, m/2] per axis with black fill (the poster's Cons.m, Zhang's "
        "protocol: the views differ by at most m - 1 px), "
        f"top-1 agreement over {config.passes} passes; circular: two circular shifts by any "
        f"amount, {config.passes} passes. Step time: median training step, relative to "
        f"`baseline`. Every row trains on random crops after a {config.crop_pad}-px black "
        f"pad{' and random flips' if config.flip else ''}; AugShift rows add their two "
        f"views (symmetric, offsets in [-{config.train_max_shift}, "
        f"{config.train_max_shift}], zero fill), `shift_aug` with consistency weight 0."
        + (
            f" Images are resized to {config.content_size} px and centred on a black "
            f"{config.image_size}-px canvas (a {(config.image_size - config.content_size) // 2}"
            "-px margin: shifts up to that size are pure translations)."
            if config.content_size
            else ""
        ),
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
            reports.format_mean_std([r[key] for r in group])
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


__all__ = ["POSTER", "RERUNS", "dataset_table", "draw_curve", "poster_shown", "section"]
