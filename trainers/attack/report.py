"""The position attack's report: the sweep table and curves, artifacts, expected effects.

Rendered from the records alone (no model): `report` returns the markdown section of
`results.md` and draws `sweep-<combination>.png`. Nothing here imports TensorFlow.
"""

import math
import os

import numpy as np

from trainers.framework import reports

PERCENT = 100.0


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


__all__ = ["expected_effects", "report", "sweep_figure"]
