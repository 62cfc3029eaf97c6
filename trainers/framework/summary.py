"""The end of a run: the summary (once), `results.md`, `results.json`, TensorBoard's
report, then `--push-to`; and the figures `evaluate` yields.

`write_results` calls the experiment's `summarize` hook once with the aggregated
records, writes `results.md` (after its title a "What this run shows" paragraph from
the summary's `claims`, `reports.run_shows`; then its section and the cost of each
combination) and `results.json` (`experiment`, `config`, `results`, `distribution` and
the summary's extra keys), then TensorBoard's run `report` (the hparams table's
configuration, the opening paragraph, the claims and `results.md` as text under
`report/`, and the report's figures as images) and the series, and only then, with
`--push-to`, the pushes (`push_results`), whose records are added under `pushes`: a
push that fails or raises never loses the results.
"""

import dataclasses
import json
import os

from trainers.framework import artifacts, progress, registry, reports
from trainers.framework.callbacks import (
    write_hparams_config,
    write_images,
    write_series,
    write_text,
)

# TensorBoard's run of the whole experiment (no run is named "." in its run list).
REPORT_RUN = "report"


def write_results(plan, records):
    """`results.md` and its figures, then `results.json`; with `--push-to`, the pushes
    after them (`push_results`), so a failing push never loses the results."""
    experiment, config = plan.experiment, plan.config
    table = experiment.aggregate(config, records)
    made = experiment.summarize(config, table, config.out)  # once per run
    summary = {
        "experiment": experiment.name,
        "config": json.loads(json.dumps(dataclasses.asdict(config))),
        "results": table,
        "distribution": plan.engine.description,
        **made.extra,
    }
    opening = reports.run_shows(made.extra.get("claims") or [])
    markdown = "\n".join(
        [*reports.with_opening(made.section, opening), *reports.timing_table(records)]
    )
    artifacts.write_text(os.path.join(config.out, "results.md"), markdown + "\n")
    results_path = os.path.join(config.out, "results.json")
    artifacts.write_json(results_path, summary)
    board = os.path.join(config.out, "tensorboard")
    axes = getattr(made, "axes", None) or {}
    for run, series in made.series.items():
        write_series(os.path.join(board, run), series, axes)
    report_run = os.path.join(board, REPORT_RUN)
    names = ["combination", *(plan.hparam_keys or ())]
    write_hparams_config(report_run, names, progress.test_metrics(plan.combinations, records))
    write_text(report_run, report_texts(opening, made.extra.get("claims"), markdown))
    figures = progress.report_figures(config.out)
    if figures:
        write_images(report_run, figures)
    if getattr(config, "push_to", None):
        summary["pushes"] = push_results(plan)
        artifacts.write_json(results_path, summary)
    return summary


def report_texts(opening, claims, markdown):
    """The Text dashboard's entries of the run `report`, numbered in reading order (the
    dashboard sorts tags): `report/1_what_this_run_shows`
    (the opening paragraph), `report/2_claims` (one row per claim: verdict, claim,
    evidence) when the run judged any, and `report/3_results.md` (the whole file)."""
    texts = {"report/1_what_this_run_shows": "\n".join(opening)}
    if claims:
        rows = [
            [c.get("verdict", ""), reports.claim_line(c), c.get("evidence", "")] for c in claims
        ]
        table = reports.markdown_table(["verdict", "claim", "evidence"], rows)
        texts["report/2_claims"] = "\n".join(table)
    texts["report/3_results.md"] = markdown
    return texts


def push_results(plan):
    """`--push-to`: every combination's export through the validated push
    (`registry.PUSH_EXPORTS`); returns one record per combination. A push that raises
    is a refused push with the reason in `failed_checks`, never a lost run."""
    experiment, config = plan.experiment, plan.config
    try:
        return registry.resolve(registry.PUSH_EXPORTS)(experiment, config, plan.combinations)
    except Exception as error:  # noqa: BLE001 - recorded; the results are written already
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        print(f"   push failed: {reason}", flush=True)
        return [
            {"combination": c.name, "pushed": False, "version": None, "path": None,
             "failed_checks": [reason]}
            for c in plan.combinations
        ]  # fmt: skip


def failed_pushes(summary):
    """One line per push of `summary["pushes"]` that did not push, naming the reason."""
    return [
        f"push of {p['combination']} failed: {'; '.join(p['failed_checks']) or 'refused'}"
        for p in summary.get("pushes", ())
        if not p["pushed"]
    ]


def write_figures(out, log_dir, figures):
    """Writes `evaluate`'s figures (`{stem: figure}`) as `<out>/<stem>.png` and as images
    of the combination's TensorBoard run; returns the sorted file names (the record's)."""
    paths = {}
    for stem, figure in figures.items():
        paths[stem] = os.path.join(out, f"{stem}.png")
        reports.save_figure(figure, paths[stem])
    write_images(log_dir, paths)
    return sorted(f"{stem}.png" for stem in paths)


__all__ = [
    "REPORT_RUN",
    "failed_pushes",
    "push_results",
    "report_texts",
    "write_figures",
    "write_results",
]
