"""The probe's config, presets and combinations (no TensorFlow import here, so that
`--help` and bad flags answer at once)."""

import dataclasses
import json

from tfposenc.vocabulary import DOWNSAMPLING, PADDING_MODES, PROBE_READOUTS
from trainers.framework.config import TrainConfig, option, seeded_name
from trainers.framework.registry import Spec

# The digits' test split: the images the probe places on its canvases.
DIGIT_TEST_IMAGES = 360


@dataclasses.dataclass
class ProbeConfig(TrainConfig):
    """Every knob of `python -m trainers.probe`, with its default."""

    dataset: str = option("digits", "images placed on the grid canvases", choices=("digits",))
    model: str = option(
        "keras.applications.ResNet50",
        "the model probed: keras.applications.NAME (built without its top, at --input-size), "
        "PATH.keras (one RGB image input) or keras_hub:PRESET (needs tfposenc[hub])",
    )
    weights: str = option(
        "none", "keras.applications weights: imagenet, none or PATH of a weights file"
    )
    model_kwargs: str = option(
        "{}",
        'extra keras.applications constructor arguments as a JSON object, e.g. {"alpha": 0.35}',
    )
    input_size: int = option(
        96,
        "side of the square canvases and of the model's input, pixels (a multiple of --grid-size)",
    )
    grid_size: int = option(
        3, "cells per side of the canvases (chance: 1 / grid_size^2)", minimum=2
    )
    images: int = option(
        300,
        f"digit test images placed in every cell: 80 % train the read-outs, 20 % test them "
        f"(2..{DIGIT_TEST_IMAGES})",
        minimum=2,
    )
    readouts: tuple[str, ...] = option(
        PROBE_READOUTS, "read-outs trained on the features", choices=PROBE_READOUTS
    )
    steps: int = option(300, "Adam steps of each read-out, per target (the cell, the digit)")
    pretrain_steps: int = option(
        200,
        "steps per epoch of digit classification on random grid canvases before probing, the "
        "same for every model (0: probe the model as loaded)",
        minimum=0,
    )
    epochs: int = option(1, "pretraining epochs of --pretrain-steps steps")
    batch_size: int = option(32, "batch size of the pretraining and of the read-outs")
    eval_batch_size: int = option(64, "batch size of feature extraction and scoring")
    learning_rate: float = option(1e-3, "Adam learning rate of pretraining and read-outs (> 0)")
    beta_1: float = option(0.9, "Adam beta_1 of the pretraining, in [0, 1)", minimum=0.0)
    fine_tune: bool = option(
        False, "train the backbone with each read-out (by default its features are frozen)"
    )
    convert_padding_mode: tuple[str, ...] = option(
        (),
        "also probe the model converted to these border modes (tfposenc.convert; with "
        "--convert-downsampling: every pair; alone: with stride)",
        choices=PADDING_MODES,
    )
    convert_downsampling: tuple[str, ...] = option(
        (),
        "also probe the model converted to these downsamplings (alone: with zero padding)",
        choices=DOWNSAMPLING,
    )
    export: bool = option(False, "export a SavedModel of each pretrained model")
    out: str = option("runs/probe", "run directory (resumed when it exists)")

    def validate(self):
        # before the framework's checks, which would ask for --export first
        if self.push_to is not None:
            raise ValueError(
                "`push_to` does not apply to the probe: its models are trained only to be "
                f"measured. Received: push_to={self.push_to!r}"
            )
        super().validate()
        try:
            kwargs = json.loads(self.model_kwargs)
        except ValueError as error:
            raise ValueError(
                f"`model_kwargs` must be a JSON object ({error}). "
                f"Received: model_kwargs={self.model_kwargs!r}"
            ) from None
        if not isinstance(kwargs, dict):
            raise ValueError(
                f"`model_kwargs` must be a JSON object. Received: model_kwargs={self.model_kwargs!r}"
            )
        applications = self.model.startswith("keras.applications.")
        if kwargs and not applications:
            raise ValueError(
                "`model_kwargs` apply to keras.applications models only. "
                f"Received: model_kwargs={self.model_kwargs} with model={self.model!r}"
            )
        if self.weights != "none" and not applications:
            raise ValueError(
                "`weights` apply to keras.applications models only (a .keras file or a preset "
                f"holds its own). Received: weights={self.weights!r} with model={self.model!r}"
            )
        if self.input_size % self.grid_size:
            raise ValueError(
                f"`grid_size` must divide --input-size {self.input_size}. "
                f"Received: grid_size={self.grid_size}"
            )
        if self.images > DIGIT_TEST_IMAGES:
            raise ValueError(
                f"`images` must be at most {DIGIT_TEST_IMAGES} (the digits' test split). "
                f"Received: images={self.images}"
            )
        for name in ("readouts", "convert_padding_mode", "convert_downsampling"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"`{name}` must not repeat a value. Received: {name}={values!r}")

    def conversions(self):
        """The `(padding_mode, downsampling)` pairs probed beside the model as given."""
        modes = self.convert_padding_mode or (("zero",) if self.convert_downsampling else ())
        downs = self.convert_downsampling or (("stride",) if self.convert_padding_mode else ())
        return [(mode, down) for mode in modes for down in downs]


PRESETS = {
    # ResNet50 from keras.applications at 96 px (3 x 3 cells of 32 px).
    "default": {},
    # What the tests run: MobileNetV3Small (the smallest keras.applications model at its
    # default arguments) at 32 px on 2 x 2 cells, untrained, a few read-out steps.
    "smoke": {
        "model": "keras.applications.MobileNetV3Small",
        "input_size": 32,
        "grid_size": 2,
        "images": 20,
        "steps": 10,
        "pretrain_steps": 0,
        "batch_size": 16,
        "verbose": "0",
        "out": "runs/probe-smoke",
    },
}


@dataclasses.dataclass(frozen=True)
class Combination:
    """One model probed: `variant` "original" (the model as given) or
    "<padding_mode>-<downsampling>" (its converted copy)."""

    variant: str
    seed: int

    @property
    def group(self):
        """The name shared by every seed of this combination: its variant."""
        return self.variant

    @property
    def name(self):
        return seeded_name(self.group, self.seed)

    @property
    def conversion(self):
        """`(padding_mode, downsampling)` of a converted copy, None for the original."""
        return None if self.variant == "original" else tuple(self.variant.split("-"))


def combinations(config):
    variants = ["original", *(f"{m}-{d}" for m, d in config.conversions())]
    return [Combination(v, s) for v in variants for s in config.seed_list]


__all__ = ["DIGIT_TEST_IMAGES", "PRESETS", "Combination", "ProbeConfig", "combinations"]

# What the command line needs (`trainers.framework.cli.main` parses with it, then imports
# the experiment): importing this module does not import TensorFlow.
SPEC = Spec(
    name="probe",
    config_class=ProbeConfig,
    presets=PRESETS,
    description=(
        "How much position does a model encode, channel-wise? Probes a keras.applications "
        "network, a .keras file or a keras-hub preset on digit grid canvases, beside the same "
        "model converted to other border modes and downsamplings (--convert-padding-mode, "
        "--convert-downsampling). A run killed midway resumes when started again."
    ),
    prog="python -m trainers.probe",
    experiment="trainers.probe.experiment:EXPERIMENT",
)
