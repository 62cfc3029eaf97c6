"""The position probe on your own model: how much position does it encode, channel-wise,
and how much is left after converting it to another border mode and downsampling?

    python -m trainers.probe --model keras.applications.ResNet50 --weights none \\
        --convert-padding-mode circular --convert-downsampling aps
    python -m trainers.probe --model my_model.keras --input-size 96
    python -m trainers.probe --model keras_hub:resnet_18_imagenet   # with tfposenc[hub]
    python -m trainers.probe --preset smoke                         # what the tests run

The model (and its converted copy, weights copied by `tfposenc.convert.convert_model`)
is trained briefly on digit classification on random grid canvases
(`--pretrain-steps`, the same for both), then `tfposenc.analysis.position_probe` places
held-out digits in every cell of a `--grid-size` grid at `--input-size` pixels and
trains the classifier, PermuteNet and GAPNet read-outs for the cell and the digit on
the frozen features (`--fine-tune` trains the backbone too). The run directory
(`--out`, default `runs/probe`) receives `config.json`, `results.json`, `results.md`,
`probe.png` and TensorBoard events. Measured cost on the 2-core CPU development
machine: smoke about 30 s; the default (ResNet50 at 96 px, 300 digits) about 6 min
with a conversion.

The command is self-contained: it imports nothing else from `trainers`.
"""

from trainers.probe.config import PRESETS, ProbeConfig, build_parser, parse

__all__ = ["PRESETS", "ProbeConfig", "build_parser", "main", "parse"]


def main(argv=None):
    """Parses the command line, then runs the probe (TensorFlow is imported only here)."""
    config, parser = parse(argv)
    from trainers.probe.run import run

    return run(config, parser)
