"""The probe's results.json, results.md, figure and TensorBoard events."""

import json
import os
import shlex
import sys

import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure
from tensorboard.plugins.hparams import api as hparams


def _percent(value):
    return "-" if value is None else f"{100 * value:.1f}"


def markdown(config, records, seconds):
    lines = [
        f"# Position probe: {config.model} (weights {config.weights})",
        "",
        "Command: `python -m trainers.probe " + shlex.join(sys.argv[1:]) + "`",
        "",
        (
            f"The model was trained for {config.pretrain_steps} steps on digit classification "
            f"(random {config.grid_size} x {config.grid_size} canvases of {config.input_size} "
            "px) before probing: these numbers describe that briefly trained model, not a "
            "converged one."
            if config.pretrain_steps
            else f"The model was probed as loaded (weights {config.weights}), untrained on digits."
        )
        + f" Read-outs: {config.steps} steps of Adam on the "
        + ("frozen" if config.frozen else "fine-tuned")
        + f" features; test: held-out digits in every cell. Total {seconds:.0f} s.",
        "",
        "| model | read-out | location % | class % |",
        "|---|---|---|---|",
    ]
    for record in records:
        for readout, scores in record["probe"]["readouts"].items():
            lines.append(
                f"| {record['name']} | {readout} | {_percent(scores['location'])} | "
                f"{_percent(scores['class'])} |"
            )
    chance = records[0]["probe"]["chance"]
    lines.append(f"| chance | | {_percent(chance['location'])} | {_percent(chance['class'])} |")
    lines += ["", "| model | channels | top-ranked channels | removed to halve location |"]
    lines.append("|---|---|---|---|")
    for record in records:
        probe = record["probe"]
        halving = probe["halving_fraction"]
        top = ", ".join(str(c) for c in probe["ranking"]["order"][:8])
        lines.append(
            f"| {record['name']} | {probe['num_channels']} | {top} | "
            + ("not reached" if halving is None else f"{100 * halving:g} %")
            + " |"
        )
    for record in records[1:]:
        lines += [
            "",
            f"## Conversion report: {record['name']} ({len(record['changes'])} layers)",
            "",
            "| layer | before | after |",
            "|---|---|---|",
        ]
        lines += [f"| {n} | {b} | {a} |" for n, b, a in record["changes"]]
    return "\n".join(lines) + "\n"


def figure(records):
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    bars, curve = fig.subplots(1, 2)
    readouts = list(records[0]["probe"]["readouts"])
    width = 0.8 / len(records)
    for index, record in enumerate(records):
        values = [100 * record["probe"]["readouts"][r]["location"] for r in readouts]
        bars.bar(np.arange(len(readouts)) + index * width, values, width, label=record["name"])
        ablation = record["probe"]["ablation"]
        curve.plot(
            [100 * a["fraction"] for a in ablation],
            [100 * a["location"] for a in ablation],
            marker="o",
            label=record["name"],
        )
    chance = 100 * records[0]["probe"]["chance"]["location"]
    for ax in (bars, curve):
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1)
        ax.set_ylim(0, 105)
    bars.set_xticks(np.arange(len(readouts)) + 0.4 - width / 2, readouts)
    bars.set_ylabel("location accuracy %")
    bars.legend(fontsize=8)
    curve.set_xlabel("top-ranked channels removed %")
    curve.set_title("classifier read-out", fontsize=9)
    return fig


def tensorboard(config, records):
    hp_values = {
        key: (value if isinstance(value, (int, float, str, bool)) else json.dumps(value))
        for key, value in config.to_dict().items()
        if value is not None
    }
    for record in records:
        logdir = os.path.join(config.out, "tensorboard", record["name"].replace("/", "_"))
        with tf.summary.create_file_writer(logdir).as_default():
            hparams.hparams({**hp_values, "variant": record["name"]})
            for readout, scores in record["probe"]["readouts"].items():
                for target, value in scores.items():
                    if value is not None:
                        tf.summary.scalar(f"{target}/{readout}", value, step=0)
            for step, entry in enumerate(record["probe"]["ablation"]):
                tf.summary.scalar("ablation/location", entry["location"], step=step)


def write_reports(config, records, seconds):
    with open(os.path.join(config.out, "results.json"), "w") as f:
        json.dump({"config": config.to_dict(), "variants": records, "seconds": seconds}, f)
    with open(os.path.join(config.out, "results.md"), "w") as f:
        f.write(markdown(config, records, seconds))
    figure(records).savefig(os.path.join(config.out, "probe.png"), dpi=100)
    tensorboard(config, records)
