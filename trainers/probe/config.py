"""The probe command's config, presets and argument parser (no TensorFlow import here,
so that `--help` and bad flags answer at once)."""

import argparse
import dataclasses
import json
import sys

from tfposenc.vocabulary import DOWNSAMPLING, PADDING_MODES

READOUTS = ("classifier", "permutenet", "gapnet")


@dataclasses.dataclass
class ProbeConfig:
    """Every knob of `python -m trainers.probe`, with its default."""

    # The model: keras.applications.NAME, PATH.keras or keras_hub:PRESET.
    model: str = "keras.applications.ResNet50"
    # keras.applications weights: "imagenet", "none" or a weights file.
    weights: str = "none"
    # Extra constructor arguments of a keras.applications model (e.g. {"alpha": 0.35}).
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    # Square input size of the canvases (a multiple of grid_size, and of the total
    # stride for an exactly shift-invariant APS conversion).
    input_size: int = 96
    grid_size: int = 3
    # Digit images used (split 80/20 into probe training and test images).
    images: int = 300
    readouts: tuple = READOUTS
    steps: int = 300
    batch_size: int = 32
    learning_rate: float = 1e-3
    # Steps of digit classification on random grid canvases before probing (0: none),
    # the same for the original and the converted model.
    pretrain_steps: int = 200
    frozen: bool = True
    convert_padding_mode: str | None = None
    convert_downsampling: str | None = None
    seed: int = 0
    out: str = "runs/probe"

    def to_dict(self):
        values = dataclasses.asdict(self)
        values["readouts"] = list(self.readouts)
        return values


PRESETS = {
    # ResNet50 from keras.applications at 96 px (3 x 3 cells of 32 px).
    "default": ProbeConfig(),
    # What the tests run: a narrow MobileNetV2 at 64 px, untrained (tracing its training
    # step alone takes ~15 s on 2 cores), a few read-out steps (about 30 s).
    "smoke": ProbeConfig(
        model="keras.applications.MobileNetV2",
        model_kwargs={"alpha": 0.35},
        input_size=64,
        grid_size=4,
        images=40,
        steps=20,
        pretrain_steps=0,
        batch_size=32,
    ),
}


class ArgumentParser(argparse.ArgumentParser):
    """Prints one line `error: ...` naming the flag and exits 2 on a bad flag."""

    def error(self, message):
        sys.stderr.write(f"error: {message}\n")
        sys.exit(2)


def build_parser():
    parser = ArgumentParser(
        prog="python -m trainers.probe",
        description=(
            "How much position does a model encode, channel-wise? Probes a keras.applications "
            "network, a .keras file or a keras-hub preset on digit grid canvases, and the same "
            "model converted to another border mode and downsampling."
        ),
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default")
    parser.add_argument("--model", help="keras.applications.NAME, PATH.keras or keras_hub:PRESET")
    parser.add_argument("--weights", help="imagenet, none or PATH (keras.applications only)")
    parser.add_argument("--model-kwargs", type=json.loads, help='JSON, e.g. {"alpha": 0.35}')
    parser.add_argument("--input-size", type=int)
    parser.add_argument("--grid-size", type=int)
    parser.add_argument("--images", type=int)
    parser.add_argument("--readouts", nargs="+", choices=READOUTS)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--pretrain-steps", type=int)
    parser.add_argument("--fine-tune", dest="frozen", action="store_false", default=None)
    parser.add_argument("--convert-padding-mode", choices=PADDING_MODES)
    parser.add_argument("--convert-downsampling", choices=DOWNSAMPLING)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--out")
    return parser


POSITIVE = ("input_size", "grid_size", "images", "steps", "batch_size")


def parse(argv=None):
    """The resolved `ProbeConfig` of a command line (exits 2 with one line on errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    config = dataclasses.replace(PRESETS[args.preset])
    for field in dataclasses.fields(ProbeConfig):
        value = getattr(args, field.name, None)
        if value is not None:
            setattr(config, field.name, tuple(value) if field.name == "readouts" else value)
    for name in POSITIVE:
        if getattr(config, name) < 1:
            parser.error(f"argument --{name.replace('_', '-')}: must be >= 1")
    if config.pretrain_steps < 0:
        parser.error("argument --pretrain-steps: must be >= 0")
    if config.input_size % config.grid_size:
        parser.error(
            f"argument --grid-size: must divide --input-size {config.input_size} "
            f"(received {config.grid_size})"
        )
    if (config.convert_padding_mode is None) != (config.convert_downsampling is None):
        config.convert_padding_mode = config.convert_padding_mode or "zero"
        config.convert_downsampling = config.convert_downsampling or "stride"
    if not isinstance(config.model_kwargs, dict):
        parser.error("argument --model-kwargs: must be a JSON object")
    return config, parser
