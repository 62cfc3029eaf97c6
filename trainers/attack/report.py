"""The position attack's report: the sweep table and curves, claims, border artifacts.

Rendered from the records alone (no model): `report` returns the markdown section of
`results.md` and draws `sweep-<combination>.png`; `sweep_series` gives the same curves
to TensorBoard. Nothing here imports TensorFlow (the untrained-backbone artifacts come
from `trainers.attack.measure.architecture_artifacts`, computed once per run).
"""

import math
import os

import numpy as np

from trainers.attack.claims import claims
from trainers.framework import reports

PERCENT = 100.0
STYLES = {"ranked": "-o", "random": "--s", "magnitude": ":^"}


def sweep_figure(records, title):
    """Metric (%) against the fraction removed: ranked, the controls and random with a
    +/- SD band, one panel per region."""
    regions = list(dict.fromkeys(r["region"] for r in records))
    selections = list(dict.fromkeys(r["selection"] for r in records))
    figure = reports.new_figure((3.2 * len(regions), 3.0))
    axes = figure.subplots(1, len(regions), squeeze=False)[0]
    for axis, region in zip(axes, regions):
        for selection in selections:
            rows = sorted(
                (r["fraction"], r["value"], r["std"])
                for r in records
                if r["region"] == region and r["selection"] == selection
            )
            x = np.array([PERCENT * f for f, _, _ in rows])
            y = np.array([PERCENT * v for _, v, _ in rows])
            s = np.array([PERCENT * d for _, _, d in rows])
            axis.plot(x, y, STYLES.get(selection, "-."), markersize=3, label=selection)
            if selection == "random":
                axis.fill_between(x, y - s, y + s, alpha=0.25)
        axis.set_title(region, fontsize=10)
        axis.set_xlabel("channels removed (%)", fontsize=9)
        axis.set_ylim(0, 105)
    axes[0].set_ylabel(f"{records[0]['metric']} (%)", fontsize=9)
    axes[0].legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def sweep_series(records):
    """`{tag: [(percent removed, value %)]}`: `sweep/<selection>/<region>` and
    `sweep/random_sd/<region>` (x: the percentage removed, rounded to an integer step)."""
    series = {}
    for r in sorted(records, key=lambda x: x["fraction"]):
        step = int(round(PERCENT * r["fraction"]))
        series.setdefault(f"sweep/{r['selection']}/{r['region']}", []).append(
            (step, PERCENT * r["value"])
        )
        if r["selection"] == "random":
            series.setdefault(f"sweep/random_sd/{r['region']}", []).append(
                (step, PERCENT * r["std"])
            )
    return series


def _at(records, fraction, selection, region):
    for r in records:
        close = math.isclose(r["fraction"], fraction, abs_tol=1e-9)
        if close and r["selection"] == selection and r["region"] == region:
            return r
    return None


def _cell(records, fraction, region, controls):
    ranked, random = (_at(records, fraction, s, region) for s in ("ranked", "random"))
    if ranked is None or random is None:
        return ""
    others = [_at(records, fraction, c, region) for c in controls]
    middle = "".join(f" / {PERCENT * o['value']:.1f}" for o in others if o is not None)
    difference = PERCENT * (ranked["value"] - random["value"])
    return (
        f"{PERCENT * ranked['value']:.1f}{middle} / {PERCENT * random['value']:.1f} "
        f"± {PERCENT * random['std']:.1f} ({difference:+.1f})"
    )


def _artifact_rows(artifacts):
    return [
        [a["padding"], a["task"], a["stage"], f"{a['constant_input_std']:.2e}",
         f"{a['border_contrast']:.4f}", f"{a.get('random_border_gap', math.nan):.4f}",
         f"{a.get('random_border_gap_se', math.nan):.4f}"]
        for a in artifacts
    ]  # fmt: skip


ARTIFACT_HEADER = (
    "padding", "task", "stage", "constant-input std", "constant border contrast",
    "random-input border gap", "its sampling error",
)  # fmt: skip


def report(config, results, run_dir, architecture=None, checked=None):
    """The attack's section of `results.md`; draws `sweep-<combination>.png`.
    `architecture`: the untrained-backbone artifact rows (None: none shown); `checked`:
    the claims of `trainers.attack.claims.claims` (None: computed here)."""
    controls = list(config.ranking[1:])
    label = " / ".join([config.ranking[0], *controls, "random ± SD (ranked - random)"])
    header = ["padding", "task", "region", "unablated"]
    header += [f"{PERCENT * f:g}%: {label}" for f in config.table_fractions]
    rows = []
    for r in results:
        records = r["sweep"]
        figure = sweep_figure(records, f"{r['combination']}: {config.ranking[0]} ranking")
        reports.save_figure(figure, os.path.join(run_dir, f"sweep-{r['combination']}.png"))
        for region in dict.fromkeys(x["region"] for x in records):
            base = _at(records, 0.0, "ranked", region)
            cells = [_cell(records, f, region, controls) for f in config.table_fractions]
            unablated = "" if base is None else f"{PERCENT * base['value']:.1f}"
            rows.append([r["padding_mode"], r["task"], region, unablated, *cells])
    spearman = [
        f"{r['combination']} {r.get('flip_magnitude_spearman', math.nan):.2f}" for r in results
    ]
    claim_rows = [
        [c["combination"], f"{PERCENT * c['fraction']:g}%", c["claim"], c["verdict"], c["evidence"]]
        for c in (claims(config, results) if checked is None else checked)
    ]
    artifact_rows = _artifact_rows(a for r in results for a in r["artifacts"])
    lines = [
        f"# Position attack ({config.dataset} segmentation, {config.location_dataset} "
        f"location; {config.backbone} width {config.width})",
        "",
        f"Channels ranked by `{config.ranking[0]}` (controls: {', '.join(controls) or 'none'}) "
        f"on {config.rank_examples} training canvases of models trained "
        f"{'with' if config.flip else 'without'} random horizontal flips; removed (zeroed) "
        f"with no retraining. Values in %: mIoU (segmentation) or accuracy (location) on "
        f"the test canvases; random is the mean ± SD of {config.random_draws} draws "
        f"({max(config.random_draws, config.claim_draws)} at the claim fractions, "
        f"{', '.join(f'{100 * f:g}%' for f in config.claim_fractions)}). "
        "Regions: the authors' left / right half and centre (middle half of the width), "
        "and the 2-D ring: `border` (the outer ring of cells) vs `inner` (the other cells).",
        "",
        *reports.markdown_table(header, rows),
        "",
        "Spearman correlation of the flip scores with the channel magnitudes: "
        + ", ".join(spearman)
        + ".",
        "",
        "## Claims (at "
        + ", ".join(f"{PERCENT * f:g}%" for f in config.claim_fractions)
        + " removed, each judged on its own)",
        "",
        *reports.markdown_table(("model", "removed", "claim", "verdict", "evidence"), claim_rows),
        "",
        f"## Border artifacts of the trained models (constant input {config.constant_value:g};"
        f" {config.artifact_inputs} uniform-noise inputs)",
        "",
        "The constant input is blind to reflect and replicate padding (they keep it "
        "constant); the random-input border gap is the ring-minus-interior difference of "
        "each channel's per-position mean over the noise inputs, relative to the mean "
        "|activation|, beside its sampling error (circular padding: noise only).",
        "",
        *reports.markdown_table(ARTIFACT_HEADER, artifact_rows),
    ]
    if architecture:
        lines += [
            "",
            "## Border artifacts of untrained backbones, padding "
            + ", ".join(dict.fromkeys(a["padding"] for a in architecture)),
            "",
            *reports.markdown_table(ARTIFACT_HEADER, _artifact_rows(architecture)),
        ]
    return lines


__all__ = ["report", "sweep_figure", "sweep_series"]
