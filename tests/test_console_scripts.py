"""Every console script of pyproject.toml: `-h` exits 0, a bad flag gets one line
naming it and exit code 2 (argparse's usage dump is not an answer); installed, each
runs as a user runs it (its smoke preset, or train -> push -> serve) and exits 0 with
readable lines on stdout."""

import importlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

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


# === The installed scripts, run as a user runs them ===

BIN = os.path.dirname(sys.executable)  # the virtual environment's bin/ (pip install -e .)
TINY_CHANNELWISE = ["--preset", "smoke", "--networks", "classifier", "--epochs", "1"]
TINY_CHANNELWISE += ["--train-examples", "24", "--test-examples", "8"]
# The smoke presets with the smallest settings (one combination each): the suite's runs
# (~30 s each on 2 idle cores, 2-3 min each at load 12). tfposenc-push, -model-server
# and -launch run for real in the slow tests below; the fast suite checks their -h.
SMOKE = {
    "tfposenc-channelwise": [*TINY_CHANNELWISE, "--no-export"],
    "tfposenc-probe": ["--preset", "smoke", "--images", "10"],
    "tfposenc-shift-invariance": ["--preset", "smoke", "--methods", "baseline", "--no-export"],
    "tfposenc-attack": ["--preset", "smoke", "--padding-modes", "zero", "--tasks", "location"],
}
# The presets as they are (the slow marker): what a user's first command runs.
FULL_SMOKE = {
    "tfposenc-channelwise": ["--preset", "smoke"],
    "tfposenc-shift-invariance": ["--preset", "smoke"],
    "tfposenc-attack": ["--preset", "smoke"],
    "tfposenc-probe": ["--preset", "smoke", "--convert-padding-mode", "circular"],
}


def user_env():
    """The environment of a user's shell: this checkout first; no TensorFlow log level
    (the scripts set it), none left behind by an in-process run of a main."""
    quiet = ("TF_CPP_MIN_LOG_LEVEL", "TFPOSENC_USER_TF_LOG_LEVEL")
    env = {k: v for k, v in os.environ.items() if k not in quiet}
    return {**env, "PYTHONPATH": ROOT}


def installed(name):
    path = os.path.join(BIN, name)
    assert os.access(path, os.X_OK), f"{name} is not installed in {BIN} (pip install -e .)"
    return path


def run_script(name, args, cwd, timeout=600):
    return subprocess.run(
        [installed(name), *args],
        cwd=cwd,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_human_readable(result):
    """Exit code 0, no traceback, and stdout made of short printable lines, not a Python
    object (the probe printed its records, ~110 KB of dict reprs, and exited 1)."""
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(result.stdout) < 50_000, len(result.stdout)
    for line in result.stdout.splitlines():
        assert line.isprintable() and len(line) < 2000, line[:200]
        assert not re.search(r"\{'\w+': |\[\{'|^\(?\[?\d+(\.\d+)?, \d", line), line[:200]


def test_every_script_is_installed():
    for name in scripts():
        installed(name)


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_a_smoke_run_exits_0_with_readable_output(name, tmp_path):
    result = run_script(name, [*SMOKE[name], "--out", str(tmp_path / "run")], tmp_path)
    assert_human_readable(result)
    assert (tmp_path / "run" / "results.json").exists() and "results in" in result.stdout


@pytest.mark.slow  # ~5 min at load 12 on 2 cores; the fast suite runs their -h above
def test_train_push_and_serve(tmp_path):
    """tfposenc-channelwise, then tfposenc-push of its export, then tfposenc-model-server
    on the pushed version until SIGTERM: each exits 0 with readable output."""
    run = tmp_path / "run"
    assert_human_readable(
        run_script("tfposenc-channelwise", [*TINY_CHANNELWISE, "--out", str(run)], tmp_path)
    )
    export = next((run / "exports").iterdir()) / "1"
    serving = tmp_path / "serving"
    pushed = run_script(
        "tfposenc-push", ["--export", str(export), "--serving-base", str(serving)], tmp_path
    )
    assert_human_readable(pushed)
    assert "pushed version 1" in pushed.stdout and (serving / "1" / "saved_model.pb").exists()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ["--port", "0", "--rest_api_host", "127.0.0.1", "--rest_api_port", str(port)]
    args += ["--model_name", "digits", "--model_base_path", str(serving)]
    server = subprocess.Popen(
        [installed("tfposenc-model-server"), *args],
        cwd=tmp_path,
        env=user_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models/digits") as reply:
                    if b"AVAILABLE" in reply.read():
                        break
            except OSError:
                time.sleep(0.5)
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
    result = subprocess.CompletedProcess(server.args, server.returncode, out, err)
    assert_human_readable(result)
    assert "REST API at" in out and "server stopped" in out


@pytest.mark.slow
def test_launch_runs_a_trainer_on_one_worker(tmp_path):
    args = ["--workers", "1", "--", "trainers.channelwise", *TINY_CHANNELWISE, "--no-export"]
    result = run_script("tfposenc-launch", [*args, "--out", str(tmp_path / "run")], tmp_path)
    assert_human_readable(result)
    assert (tmp_path / "run" / "results.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FULL_SMOKE))
def test_the_smoke_preset_as_it_is_exits_0(name, tmp_path):
    result = run_script(name, [*FULL_SMOKE[name], "--out", str(tmp_path / "run")], tmp_path)
    assert_human_readable(result)
