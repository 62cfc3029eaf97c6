import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest

from trainers.channelwise import EXPERIMENT
from trainers.channelwise.config import PRESETS, ChannelwiseConfig
from trainers.framework import cli
from trainers.framework.config import check_resume, write_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def smoke(out, **overrides):
    return ChannelwiseConfig(**{**PRESETS["smoke"], "out": str(out), **overrides})


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"grid_sizes": (0,)}, r"`grid_sizes` must be a positive int. Received: grid_sizes=0"),
        ({"grid_sizes": ()}, r"Received: grid_sizes=\(\)"),
        (
            {"padding_modes": ("mirror",)},
            r"`padding_modes` must be one of .*'zero'.*Received: padding_modes='mirror'",
        ),
        ({"networks": ("vgg",)}, "Received: networks='vgg'"),
        ({"stem": "tiny"}, r"`stem` must be one of \('paper', 'imagenet', 'cifar'\)"),
        ({"epochs": 0}, "Received: epochs=0"),
        ({"dataset": "mnist"}, "Received: dataset='mnist'"),
        (
            {"learning_rate": float("inf")},
            "`learning_rate` must be a finite number. Received: learning_rate=inf",
        ),
        (
            {"learning_rate": float("nan")},
            "`learning_rate` must be a finite number. Received: learning_rate=nan",
        ),
        ({"learning_rate": 0.0}, r"`learning_rate` must be > 0"),
        ({"beta_2": 1.0}, r"`beta_2` must be in \[0, 1\)"),
        ({"flip": "yes"}, "Received: flip='yes'"),
    ],
)
def test_bad_configs_are_refused(overrides, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        smoke(tmp_path, **overrides)
    assert not os.listdir(tmp_path)


def test_any_grid_size_has_epochs(tmp_path):
    config = smoke(tmp_path, grid_sizes=(4, 9), epochs=3, order_free_epochs=3)
    assert [EXPERIMENT.budget(config, c).epochs for c in EXPERIMENT.combinations(config)] == [3] * 4
    # One default for every grid size (no per-grid table) and every network (matched
    # budgets); the order-free networks get their own only when asked.
    assert ChannelwiseConfig().epochs == 3 and ChannelwiseConfig().order_free_epochs is None


def test_resume_check_refuses_another_experiment_or_other_settings(tmp_path):
    config = smoke(tmp_path)
    check_resume(config, "channelwise")  # a new directory: nothing to check
    write_config(config, "channelwise")
    assert json.load(open(tmp_path / "config.json"))["experiment"] == "channelwise"
    check_resume(config, "channelwise")
    with pytest.raises(
        ValueError, match="`out` holds a config of experiment 'channelwise', not 'attack'"
    ):
        check_resume(config, "attack")
    with pytest.raises(ValueError, match=r"width: 4 -> 8"):
        check_resume(dataclasses.replace(config, width=8), "channelwise")


def run_main(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(EXPERIMENT, argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_help_shows_each_default_once_and_every_choice(capsys):
    code, out, _ = run_main(["--help"], capsys)
    assert code == 0
    options = re.findall(r"^  (--[a-z0-9-]+)", out, flags=re.M)
    assert len(options) > 20
    blocks = re.split(r"\n  (?=--)", out.split("options:")[1])[1:]
    assert len(blocks) == len(options)
    for block in blocks:
        assert block.count("(default:") == 1, block
    assert "--paddings" in out and "Choices: zero, reflect, replicate, circular" in out
    assert "Choices: paper, imagenet, cifar. (default: paper)" in " ".join(out.split())
    assert "(default: 3 5 7)" in " ".join(out.split())


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\nfrom trainers import channelwise\ntry:\n    channelwise.main(['--help'])\n"
        "except SystemExit:\n    pass\nprint('TF', 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert "TF False False" in done.stdout, done.stdout + done.stderr
    assert done.stderr == ""


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--grid-sizes", "foo"], "argument --grid-sizes: invalid int value: 'foo'"),
        (["--learning-rate", "inf"], "argument --learning-rate: must be a finite number"),
        (["--learning-rate", "nan"], "argument --learning-rate: must be a finite number"),
        (
            ["--stem", "tiny"],
            "argument --stem: `stem` must be one of ('paper', 'imagenet', 'cifar')",
        ),
        (["--paddings", "mirror"], "argument --padding-modes:"),
        (
            ["--dataset", "cifar10", "--data-dir", "{tmp}/tfds"],
            "argument --dataset: Dataset 'cifar10'",
        ),
        (["--out", "/etc/hostname/run"], "argument --out: `out` must be a writable directory"),
        (["--out", "/proc/tfposenc-run"], "argument --out: `out` must be a writable directory"),
    ],
)
def test_cli_errors_are_one_line_with_code_2_and_leave_nothing(args, flag, tmp_path, capsys):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = tmp_path / "run"
    argv = ["--preset", "smoke", *([] if "--out" in args else ["--out", str(out)]), *args]
    code, stdout, stderr = run_main(argv, capsys)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0], stderr
    assert not out.exists() and not os.path.exists("/etc/hostname/run")


def test_an_explicit_none_on_the_command_line_overrides_a_default():
    from trainers.framework.cli import from_args, make_parser

    parser = make_parser(ChannelwiseConfig, PRESETS, "test")
    config = from_args(ChannelwiseConfig, parser.parse_args(["--test-examples", "none"]), PRESETS)
    assert config.test_examples is None
    config = from_args(ChannelwiseConfig, parser.parse_args([]), PRESETS)
    assert config.test_examples == ChannelwiseConfig().test_examples is not None
    assert config.grid_sizes == ChannelwiseConfig().grid_sizes
