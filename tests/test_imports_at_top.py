"""Imports at the top: the command line parses from each experiment's TensorFlow-free
`SPEC` (its `config` module), so `trainers/` keeps at most `MAX_FUNCTION_LEVEL` imports
inside functions (ruff's PLC0415), each with its reason in a comment."""

import json
import os
import re
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_FUNCTION_LEVEL = 10
EXPERIMENTS = ["attack", "channelwise", "probe", "shift_invariance"]
# `python -m trainers.<name> ARGS` in a child that reports which heavy modules it imported.
CHILD = """import runpy, sys
sys.argv = ["python -m trainers.{name}", *{args!r}]
code = 0
try:
    runpy.run_module("trainers.{name}", run_name="__main__", alter_sys=True)
except SystemExit as error:
    code = error.code
print("imported:", [m for m in ("tensorflow", "keras") if m in sys.modules])
sys.exit(code)
"""


def function_level_imports(*options, path="trainers"):
    command = [sys.executable, "-m", "ruff", "check", "--select", "PLC0415"]
    command += ["--output-format", "json", *options, path]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    return done.returncode, json.loads(done.stdout)


def reason(path, row):
    """The reason given for the function-level import on line `row` of `path`: the text
    after the `noqa` codes on that line, else the comment on the line above."""
    lines = open(path).read().splitlines()
    line = lines[row - 1]
    if "# noqa:" not in line or "PLC0415" not in line.split("# noqa:", 1)[1]:
        return ""
    after = re.sub(r"^[\s,]*(?:[A-Z]+[0-9]+[\s,]*)+", "", line.split("# noqa:", 1)[1])
    text = after.strip(" -()")
    if not text and row > 1 and lines[row - 2].strip().startswith("#"):
        text = lines[row - 2].strip(" #")
    return text


def test_at_most_ten_function_level_imports_each_with_its_reason():
    code, found = function_level_imports("--ignore-noqa")
    places = [f"{os.path.relpath(f['filename'], ROOT)}:{f['location']['row']}" for f in found]
    assert len(found) <= MAX_FUNCTION_LEVEL, places
    for finding, place in zip(found, places):
        assert len(reason(finding["filename"], finding["location"]["row"]).split()) >= 2, place
    code, unexplained = function_level_imports()
    assert code == 0 and unexplained == []


def test_the_count_sees_an_import_inside_a_function(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    import json  # noqa: PLC0415\n\n    return json\n")
    code, found = function_level_imports("--isolated", "--ignore-noqa", path=str(planted))
    assert code == 1 and [x["location"]["row"] for x in found] == [2]
    assert reason(str(planted), 2) == ""  # `noqa` alone is no reason
    planted.write_text("def f():\n    import json  # noqa: PLC0415 (a reason)\n")
    assert reason(str(planted), 2) == "a reason"


def run_child(name, args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    start = time.perf_counter()
    command = [sys.executable, "-c", CHILD.format(name=name, args=args)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return done, time.perf_counter() - start


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_help_and_a_bad_flag_import_neither_tensorflow_nor_keras(name):
    done, seconds = run_child(name, ["--help"])
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert f"usage: python -m trainers.{name}" in done.stdout
    assert done.stdout.splitlines()[-1] == "imported: []", done.stdout[-300:]
    # TensorFlow's import alone takes seconds; the parser's, a fraction of one.
    assert seconds < 5, seconds
    done, seconds = run_child(name, ["--no-such-flag", "1"])
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"python -m trainers.{name}: error: unrecognized arguments: --no-such-flag (see --help)"
    ]
    assert done.stdout.splitlines() == ["imported: []"] and seconds < 5, seconds


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_the_spec_names_its_experiment(name):
    package = __import__(f"trainers.{name}", fromlist=["SPEC"])
    experiment = package.EXPERIMENT  # imported on first use
    assert package.SPEC.load() is experiment
    for field in ("name", "config_class", "presets", "description", "prog"):
        assert getattr(experiment, field) == getattr(package.SPEC, field), field
    assert experiment.name == name and experiment.prog == f"python -m trainers.{name}"
    with pytest.raises(AttributeError, match="NOTHING"):
        package.NOTHING  # noqa: B018
