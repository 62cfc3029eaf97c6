"""The shift-invariance experiment's `results.md` section and its consistency curve.

One table per dataset (mean +/- std over seeds, 95 % intervals), the paired
comparisons, the convention, the poster's Table 2
where the setup matches; `consistency_vs_shift_<dataset>.png`. No TensorFlow.
"""

import os

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


def section(config, rows, run_dir, claims=()):
    """The markdown section: one table per dataset (mean +/- std over seeds and a 95 %
    interval), the poster's comparisons as paired differences, the convention, the
    poster's Table 2 where it applies; draws the curves."""
    lines = [f"# Shift invariance (ResNet-18 cifar stem, width {config.width})", ""]
    where = "the held-out training images" if config.test_on_holdout else "the test split"
    lines += [
        f"Top-1 and consistency in % on {where} ({config.image_size}x{config.image_size} "
        "inputs). Cons.m: two views of each test image, top-1 agreement over "
        f"{config.passes} passes; black-canvas data: offsets in [m/2 - m + 1, m/2] per "
        "axis with black fill (the poster's Cons.m, Zhang's protocol: the views differ by "
        "at most m - 1 px); crop-mode data (textured_glyphs): two windows of the 48-px "
        "image at offsets in [0, m), no fill. Circular: two circular shifts by any amount. "
        f"Every row is measured on the same views (evaluation seed {config.seed}). Step "
        "time: median training step, relative to `baseline`. Every row trains on the same "
        f"random crops (offsets in [-{config.crop_pad}, {config.crop_pad}] per axis"
        f"{', random flips' if config.flip else ''}); AugShift rows' two views are two "
        "such crops of the same uncropped image, `shift_aug` without the consistency term."
        + (
            f" Black-canvas images are resized to {config.content_size} px and centred on "
            f"a black {config.image_size}-px canvas."
            if config.content_size
            else ""
        ),
    ]
    for dataset in config.dataset:
        group = [r for r in rows if r["dataset"] == dataset]
        lines += ["", *dataset_table(config, dataset, group)]
        lines += comparison_table([c for c in claims if c["dataset"] == dataset])
        draw_curve(dataset, group, os.path.join(run_dir, f"consistency_vs_shift_{dataset}.png"))
    return lines


def cell(row, key):
    """`mean ± std [low, high]` over seeds (the mean alone for one seed)."""
    values = [r[key] for r in row["seeds"]]
    text = reports.format_mean_std(values)
    interval = row.get(f"{key}_interval")
    return text + (f" [{interval[0]:.1f}, {interval[1]:.1f}]" if interval else "")


def comparison_table(claims):
    """The poster's comparisons: paired difference (points) [95 % interval], verdict."""
    if not claims:
        return []
    table = [
        [
            f"{c['first']} - {c['second']}",
            f"Cons.{c['m']}",
            f"{c['difference']:+.2f} [{c['low']:+.2f}, {c['high']:+.2f}]",
            c["verdict"],
        ]
        for c in claims
    ]
    seeds = ", ".join(map(str, claims[0]["seeds"]))
    return [
        "",
        f"Paired differences (points, 95 % t interval: the spread over seeds {seeds} plus "
        "the sampling of the test images, every row on the same views). Shown: the interval lies above "
        "zero; not shown: below; inconclusive: it contains zero.",
        "",
        *reports.markdown_table(["comparison", "metric", "difference", "verdict"], table),
    ]


def dataset_table(config, dataset, rows):
    methods = [r["method"] for r in rows]
    by = {r["method"]: r for r in rows}
    base = by["baseline"]["step_seconds"] if "baseline" in by else None
    seeds = sorted({r["seed"] for row in rows for r in row["seeds"]})
    header = ["method", "top-1", "Cons.8", "Cons.16", "circular", "step time"]
    show = poster_shown(config, dataset)
    if show:
        header += ["poster: top-1 / Cons.8"]
        header += ["third-party rerun: acc. / cons."] if dataset in RERUNS else []
    table = []
    for method in methods:
        row = by[method]
        cells = [method] + [
            cell(row, key) for key in ("top1", "cons8", "cons16", "circular_consistency")
        ]
        step = row["step_seconds"]
        cells.append(f"{step / base:.2f}x" if base else f"{1000 * step:.0f} ms")
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
        f"{'; mean +/- std [95% interval]' if len(seeds) > 1 else '; [95% interval]'})",
        "",
        caption,
        "",
        *reports.markdown_table(header, table),
    ]


def draw_curve(dataset, rows, path):
    """Cons.m against m, one line per method (mean over seeds)."""
    series = {}
    for row in rows:
        points = [(int(m), float(value)) for m, value in row["curve"].items()]
        series[row["method"]] = ("-o", points)
    figure = reports.line_figure(
        series, "max shift m (Cons.m)", "consistency (%)", f"Consistency against shift, {dataset}"
    )
    reports.save_figure(figure, path)


__all__ = [
    "POSTER",
    "RERUNS",
    "cell",
    "comparison_table",
    "dataset_table",
    "draw_curve",
    "poster_shown",
    "section",
]
