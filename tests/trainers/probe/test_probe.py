import json
import subprocess
import sys

import pytest

import trainers.probe.run as probe_run
from trainers.probe import main, parse


def test_smoke_preset_probes_the_model_and_its_conversion(tmp_path, capsys):
    out = tmp_path / "probe"
    records = main(
        [
            "--preset",
            "smoke",
            "--out",
            str(out),
            "--convert-padding-mode",
            "circular",
            "--convert-downsampling",
            "aps",
        ]
    )
    assert [r["name"] for r in records] == ["original", "circular/aps"]
    for name in ("config.json", "results.json", "results.md", "probe.png"):
        assert (out / name).exists(), name
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["model"] == "keras.applications.MobileNetV2"
    original, converted = results["variants"]
    assert original["changes"] == [] and converted["changes"]
    for variant in results["variants"]:
        readouts = variant["probe"]["readouts"]
        assert set(readouts) == {"classifier", "permutenet", "gapnet"}
        assert all(0 <= s["location"] <= 1 and 0 <= s["class"] <= 1 for s in readouts.values())
    report = (out / "results.md").read_text()
    assert "| circular/aps | classifier |" in report and "## Conversion report" in report
    assert any((out / "tensorboard" / "circular_aps").iterdir())
    assert "[probe] original: classifier: location" in capsys.readouterr().out


def run_command(*args):
    return subprocess.run(
        [sys.executable, "-m", "trainers.probe", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--steps", "0"], "--steps"),
        (["--convert-downsampling", "pool"], "--convert-downsampling"),
        (["--grid-size", "5"], "--grid-size"),
        (["--bogus"], "--bogus"),
    ],
)
def test_a_bad_flag_prints_one_error_line_and_exits_2(args, flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(args)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and flag in lines[0]


def test_help_and_parsing_do_not_import_tensorflow():
    code = (
        "import sys, trainers.probe; trainers.probe.parse([]); print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False"
    assert run_command("--help").returncode == 0


def test_imagenet_weights_without_network_fail_at_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(probe_run, "_imagenet_reachable", lambda name: False)
    with pytest.raises(SystemExit) as exit_info:
        main(["--weights", "imagenet", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--weights" in error[0] and "network" in error[0]


def test_unknown_model_names_the_flag(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--model", "keras.applications.NoSuchNet", "--out", str(tmp_path)])
    assert "--model" in capsys.readouterr().err
