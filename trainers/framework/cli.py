"""The command line of every trainer: flags from the config's fields, presets, `main`.

`main(spec, argv)` parses with the experiment's TensorFlow-free `registry.Spec` (so
`--help` is instant and quiet), then imports TensorFlow and the experiment, silences TensorFlow's C++ start-up chatter unless `TF_CPP_MIN_LOG_LEVEL` is set,
and answers a bad flag, an unusable `--out`, a model that cannot be built or a missing
dataset with one line naming the flag and exit code 2, leaving no run directory behind.
Each field becomes `--field-name` (plus its `aliases`); its help shows the default once
and the allowed values of every choice.
"""

import argparse
import dataclasses
import math
import os
import sys
import time

from serving.one_line_parser import OneLineParser
from trainers.framework import artifacts, registry
from trainers.framework.config import field_kind, flag

# The one-line-error parser (exit 2, one line naming the flag): one home for every
# command line, serving's included (serving imports nothing of trainers).
Parser = OneLineParser


def _converter(kind, optional):
    def convert(text):
        if optional and text.lower() == "none":
            return None
        if kind == "float":
            value = float(text)
            if not math.isfinite(value):
                raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
            return value
        return {"int": int, "str": str}[kind](text)

    convert.__name__ = kind  # argparse says "invalid int value: 'foo'"
    return convert


def _shown(value):
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value) or "()"
    return str(value)


def make_parser(config_class, presets, description, prog=None):
    parser = Parser(prog=prog, description=description)
    parser.add_argument(
        "--preset",
        choices=sorted(presets),
        default="default",
        help="named starting point; flags override it. Choices: "
        f"{', '.join(sorted(presets))}. (default: default)",
    )
    for field in dataclasses.fields(config_class):
        (kind, optional), meta = field_kind(field), field.metadata
        text = meta.get("help", "")
        if meta.get("choices"):
            text += f". Choices: {', '.join(map(str, meta['choices']))}"
        text = f"{text}. (default: {_shown(field.default)})".replace("%", "%%")
        names = [flag(field.name), *meta.get("aliases", ())]
        # Absent flags stay absent (SUPPRESS), so an explicit `--flag none` is told
        # apart from a flag not given.
        common = dict(dest=field.name, default=argparse.SUPPRESS, help=text)
        if kind == "bool":
            parser.add_argument(*names, action=argparse.BooleanOptionalAction, **common)
            continue
        element = kind[1] if kind[0] == "tuple" else kind
        metavar = field.name.upper().rstrip("S") if kind[0] == "tuple" else element.upper()
        parser.add_argument(
            *names,
            type=_converter(element, optional),
            nargs="+" if kind[0] == "tuple" else None,
            metavar=metavar,
            **common,
        )
    return parser


def from_args(config_class, args, presets):
    """The config of parsed `args`: the preset's overrides, then the explicit flags."""
    values = dict(presets[args.preset])
    for field in dataclasses.fields(config_class):
        if hasattr(args, field.name):  # given on the command line, `none` included
            given = getattr(args, field.name)
            values[field.name] = tuple(given) if isinstance(given, list) else given
    return config_class(**values)


def _naming_the_flag(error, config_class):
    message = " ".join(str(error).split())
    if isinstance(error, FileNotFoundError):  # tfposenc.data.DatasetNotFoundError
        return f"argument --dataset: {message}; --data-dir DIR names a prepared directory"
    for field in dataclasses.fields(config_class):
        if f"`{field.name}`" in message:
            return f"argument {flag(field.name)}: {message}"
    return message


def import_tensorflow_quietly():
    """Imports TensorFlow and initialises its devices with the C++ start-up lines
    (oneDNN, CUDA probing) muted, unless the user set `TF_CPP_MIN_LOG_LEVEL`.

    TensorFlow 2.21 prints some of them before absl's logging reads the variable, so
    the process's stderr (file descriptor 2) is pointed at /dev/null meanwhile; Python
    errors raised by the import still surface, after stderr is restored.
    """
    quiet = os.environ.get("TFPOSENC_USER_TF_LOG_LEVEL") != "1" and "tensorflow" not in sys.modules
    if quiet:
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
    try:
        # Imported here, not at the top: the command line imports this module and must
        # not import TensorFlow, and its start-up lines need stderr redirected first.
        import keras  # noqa: F401, PLC0415 (its TensorFlow backend logs on import too)
        import tensorflow as tf  # noqa: PLC0415 (after the redirect; see above)

        if quiet:
            tf.config.list_physical_devices()
            if "TF_CONFIG" not in os.environ:
                # The first op initialises (and probes for) CUDA; under a multi-worker
                # cluster the collectives must be configured before any op runs.
                (tf.zeros([1]) + 1).numpy()
    finally:
        if quiet:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
    return tf


class _ExpectedRetracing:
    """A `logging` filter for TensorFlow's retracing warning: every combination builds a
    new model, so Keras' step functions are traced once per model, which is expected
    here and not the excessive retracing the warning is about."""

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


def main(experiment, argv=None):
    """Parses `argv`, runs (or resumes) `experiment`, prints its results; returns 0.

    `experiment` is a `registry.Spec` (its experiment module is imported once the flags
    parse, after TensorFlow) or an `Experiment` itself.

    Usage errors exit with code 2 before anything is written; a diverged training
    (non-finite loss) returns 1 with one line naming the combination; a `--push-to` push
    that fails returns 1 with one line per failed push, after the results are written.
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        os.environ.setdefault("TFPOSENC_USER_TF_LOG_LEVEL", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    config_class = experiment.config_class
    parser = make_parser(config_class, experiment.presets, experiment.description, experiment.prog)
    args = parser.parse_args(argv)
    tf = import_tensorflow_quietly()
    tf.get_logger().addFilter(_ExpectedRetracing())
    # TensorFlow from here on: imported after parsing and `import_tensorflow_quietly`.
    from trainers.framework import callbacks, runner  # noqa: PLC0415 (TensorFlow; see above)

    if isinstance(experiment, registry.Spec):
        experiment = experiment.load()
    try:
        config = from_args(config_class, args, experiment.presets)
        plan = runner.prepare(experiment, config)
    except (ValueError, OSError) as error:
        parser.error(_naming_the_flag(error, config_class))
    start = time.time()
    try:
        runner.execute(plan)
    except callbacks.NonFiniteLossError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    if not plan.engine.writes:  # a worker that does not write has no results to show
        print(f"done in {time.time() - start:.0f} s (the chief wrote the results)")
        return 0
    with open(os.path.join(config.out, "results.md")) as f:
        print(f.read())
    print(f"done in {time.time() - start:.0f} s; results in {config.out}", flush=True)
    failed = runner.failed_pushes(artifacts.read_json(os.path.join(config.out, "results.json")))
    for line in failed:  # the results are written; the reason is in results.json too
        print(f"{parser.prog}: error: {line}", file=sys.stderr)
    return 1 if failed else 0


__all__ = ["Parser", "from_args", "import_tensorflow_quietly", "main", "make_parser"]
