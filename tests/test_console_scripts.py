"""Every console script of pyproject.toml: `-h` exits 0, a bad flag gets one line
naming it and exit code 2 (argparse's usage dump is not an answer)."""

import importlib
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def scripts():
    text = open(os.path.join(ROOT, "pyproject.toml")).read()
    table = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    return dict(re.findall(r'^([\w-]+)\s*=\s*"([\w.]+:\w+)"', table, flags=re.M))


def call(target, argv, capsys):
    module, function = target.split(":")
    main = getattr(importlib.import_module(module), function)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
        raise SystemExit(0)  # a main that returns instead of exiting
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_the_scripts_are_listed():
    assert {"tfposenc-channelwise", "tfposenc-push", "tfposenc-model-server"} <= set(scripts())


@pytest.mark.parametrize("name", sorted(scripts()))
def test_help_exits_0(name, capsys):
    code, out, _ = call(scripts()[name], ["-h"], capsys)
    assert code == 0 and "usage:" in out.lower(), out


@pytest.mark.parametrize("name", sorted(scripts()))
def test_a_bad_flag_gets_one_line_and_exit_2(name, capsys):
    code, out, err = call(scripts()[name], ["--no-such-flag", "1"], capsys)
    lines = err.strip().splitlines()
    assert code == 2, (out, err)
    assert len(lines) == 1 and "--no-such-flag" in lines[0], err
