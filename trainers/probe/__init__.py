"""The position probe on your own model: how much position does it encode, channel-wise,
and how much is left after converting it to another border mode and downsampling?

    python -m trainers.probe --model keras.applications.ResNet50 --weights none \\
        --convert-padding-mode circular --convert-downsampling aps
    python -m trainers.probe --model my_model.keras --input-size 96
    python -m trainers.probe --model keras_hub:resnet_18_imagenet   # with tfposenc[hub]
    python -m trainers.probe --preset smoke                         # what the tests run

Each combination is one model: the model as given (`original`) and each conversion
(`--convert-padding-mode` x `--convert-downsampling`, weights copied by
`tfposenc.convert.convert_model`), once per seed (`--seeds`). Each is trained briefly on
digit classification on random grid canvases (`--epochs` x `--pretrain-steps`, the same
for all), then `tfposenc.analysis.position_probe` places held-out digits in every cell
of a `--grid-size` grid at `--input-size` pixels and trains the classifier, PermuteNet
and GAPNet read-outs for the cell and the digit on the frozen features (`--fine-tune`
trains the backbone too). The run directory (`--out`, default `runs/probe`) is the
framework's (`trainers.framework.runner`): `config.json`, `metrics.jsonl` (pretraining),
`results/<combination>.json` (named `<variant>-seed<seed>`), `results.json` (one record
per model over its seeds: the mean and `_std` of each read-out's accuracies and the
per-seed records under `seeds`, `trainers.framework.seeds`), `results.md` (accuracies
with their test count and 95 % intervals), `probe.png`, `models/` and `tensorboard/` (a run per
combination with `test/` values and hparams, `report/` with the figure). Killed and
started again with the same command, finished combinations are kept ("resuming ...").

Measured cost (the 2-core CPU development machine, shared with other jobs; wall time,
CPU seconds, and the 1-minute load average during the run):

    --preset smoke (MobileNetV3Small, 32 px, 20 images, untrained): 31 s wall, 19 CPU-s,
        load 2.9-3.1.
    the default (ResNet50 at 96 px, 200 pretraining steps, 300 images, no conversion):
        16 min 20 s wall, 572 CPU-s at load 3-9 (pretraining 14 min at 4 s/step, the
        probe 2 min); 25 min 46 s, 576 CPU-s at load 8-14. Both runs gave the same
        table (seed 0). It writes 271 MB (models/, the pretrained ResNet50).
    A conversion was not timed: it is one more combination with its own pretraining
    and probe (blur and APS convolve at stride 1 before subsampling: not cheaper).
"""

import os

from trainers.framework import cli
from trainers.framework.config import check_resume
from trainers.probe.config import PRESETS, SPEC, Combination, ProbeConfig, combinations

__all__ = ["EXPERIMENT", "PRESETS", "SPEC", "Combination", "ProbeConfig", "main"]


def resume_notice(argv):
    """ "resuming OUT: k of n combinations finished earlier" when `--out` holds a started
    run of this same config (the runner itself says so only for a combination killed
    during its training). None otherwise, and for a command line that does not parse
    (`cli.main` answers that)."""
    parser = cli.make_parser(ProbeConfig, PRESETS, SPEC.description, SPEC.prog)
    parser.error = parser.exit = _refuse  # silent: `cli.main` parses again and answers
    parser.print_help = lambda file=None: None
    try:
        args = parser.parse_args(argv)
    except ValueError:
        return None
    out = getattr(args, "out", PRESETS[args.preset].get("out", ProbeConfig.out))
    if not os.path.exists(os.path.join(out, "config.json")):
        return None
    # The config's checks import Keras: TensorFlow first, quietly, as `cli.main` does.
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        os.environ.setdefault("TFPOSENC_USER_TF_LOG_LEVEL", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cli.import_tensorflow_quietly()
    try:
        config = cli.from_args(ProbeConfig, args, PRESETS)
        check_resume(config, SPEC.name)
    except (ValueError, OSError):
        return None
    done = [c.name for c in combinations(config) if os.path.exists(_result(config, c))]
    total = len(combinations(config))
    names = f" ({', '.join(done)})" if done else ""
    return f"resuming {config.out}: {len(done)} of {total} combinations finished earlier{names}"


def _refuse(*args, **kwargs):
    raise ValueError("not a runnable command line")


def _result(config, combination):
    return os.path.join(config.out, "results", f"{combination.name}.json")


def main(argv=None):
    """`python -m trainers.probe` and `tfposenc-probe`: returns the exit code (0 when
    the run finished; a bad flag or model exits 2 with one line)."""
    notice = resume_notice(argv)
    if notice:
        print(notice, flush=True)
    return cli.main(SPEC, argv)


# `EXPERIMENT`: the hooks, imported on first use (`Spec.package_getattr`).
__getattr__ = SPEC.package_getattr(__name__)
