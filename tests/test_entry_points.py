"""Every command of the project, run as a user runs it (a fresh Python process): a bad
flag exits 2 with exactly one line on stderr naming it, `--help` exits 0; neither imports
TensorFlow or Keras (so no TensorFlow log comes before the line, and `--help` is
instant). The commands: each console script of pyproject.toml, and `python -m` of each
script's module, each package of trainers/ with a `__main__.py` (every experiment) and
the serving client. The parser is `serving.one_line_parser.OneLineParser` for all."""

import os
import re
import subprocess
import sys

import pytest

from serving.one_line_parser import OneLineParser
from tests.test_console_scripts import scripts, user_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("tensorflow", "keras")


def modules():
    """The `python -m` commands: the scripts' modules, trainers' packages that run with
    `-m` (each experiment, the delivery) and `serving.client`."""
    found = {target.split(":")[0] for target in scripts().values()} | {"serving.client"}
    for name in os.listdir(os.path.join(ROOT, "trainers")):
        if os.path.exists(os.path.join(ROOT, "trainers", name, "__main__.py")):
            found.add(f"trainers.{name}")
    return sorted(found)


def commands():
    """`{id: argv before the flags}`: each console script (its function called as the
    installed script calls it) and each `python -m` module."""
    found = {}
    for name, target in sorted(scripts().items()):
        module, function = target.split(":")
        code = f"import sys; from {module} import {function}; sys.exit({function}())"
        found[name] = [sys.executable, "-X", "importtime", "-c", code]
    for module in modules():
        found[f"-m {module}"] = [sys.executable, "-X", "importtime", "-m", module]
    return found


def run(argv):
    """`(exit code, stdout, stderr lines but the import-time ones, modules imported)`.
    The environment is a user's: no `TF_CPP_MIN_LOG_LEVEL`, which would hide the log."""
    done = subprocess.run(
        argv, cwd=ROOT, env=user_env(), capture_output=True, text=True, timeout=120
    )
    lines = done.stderr.splitlines()
    imported = {
        m.group(1) for m in map(re.compile(r"^import time:.*\|\s*([\w.]+)$").match, lines) if m
    }
    lines = [line for line in lines if not line.startswith("import time:")]
    return done.returncode, done.stdout, lines, imported


def test_every_command_is_found():
    experiments = {"channelwise", "attack", "shift_invariance", "probe"}
    assert {f"trainers.{e}" for e in experiments} <= set(modules())
    assert {"trainers.push", "serving.server", "serving.client", "trainers.launch"} <= set(
        modules()
    )
    assert {"tfposenc-probe", "tfposenc-push", "tfposenc-model-server"} <= set(commands())


@pytest.mark.parametrize("name", sorted(commands()))
def test_a_bad_flag_is_one_line_naming_it_and_exit_2(name):
    code, out, lines, imported = run([*commands()[name], "--no-such-flag"])
    assert code == 2 and out == "", (code, out, lines)
    assert len(lines) == 1, lines
    assert re.fullmatch(
        r"\S.*: error: unrecognized arguments: --no-such-flag \(see --help\)", lines[0]
    ), lines
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


@pytest.mark.parametrize("name", sorted(commands()))
def test_help_exits_0_quietly_without_tensorflow(name):
    code, out, lines, imported = run([*commands()[name], "--help"])
    assert code == 0 and out.startswith("usage: "), (code, out[:200], lines)
    assert lines == [], lines
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_the_import_time_reader_sees_tensorflow():
    """The checks above can fail: the same reader finds TensorFlow where it is imported."""
    code, _, lines, imported = run([sys.executable, "-X", "importtime", "-c", "import keras"])
    assert code == 0 and {"tensorflow", "keras"} <= imported


# === The parser itself ===


def parse(argv):
    parser = OneLineParser(prog="cmd")
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--name", default="a")
    parser.add_argument("paths", nargs="*")
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    "argv, line",
    [
        (["--bogus"], "cmd: error: unrecognized arguments: --bogus (see --help)"),
        (
            ["--bogus=3", "--size", "1"],
            "cmd: error: unrecognized arguments: --bogus=3 (see --help)",
        ),
        (["--size", "x"], "cmd: error: argument --size: invalid int value: 'x' (see --help)"),
        ([], "cmd: error: the following arguments are required: --size (see --help)"),
    ],
)
def test_the_parser_answers_in_one_line_naming_the_flag(argv, line, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == line + "\n"


def test_the_parser_leaves_good_command_lines_to_argparse():
    args = parse(["--size", "-3", "--na", "b", "x.png", "--", "--not-a-flag"])
    assert (args.size, args.name, args.paths) == (-3, "b", ["x.png", "--not-a-flag"])


def test_a_multi_line_message_becomes_one_line(capsys):
    with pytest.raises(SystemExit):
        OneLineParser(prog="cmd").error("first\n\n  second")
    assert capsys.readouterr().err == "cmd: error: first second (see --help)\n"
