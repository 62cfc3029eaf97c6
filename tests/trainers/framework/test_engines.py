"""The single-process and the multi-worker engine pass the same contract check:
fit, resume after a restart, who writes, and decisions shared from the writer."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CHECK = "tests.trainers.framework.engine_check"


def run(command, tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return {
        int(name.split(".")[1]): json.load(open(tmp_path / name))
        for name in os.listdir(tmp_path)
        if name.startswith("engine.")
    }


@pytest.mark.parametrize("engine", ["single_process", "multi_worker"])
def test_engine_contract(engine, tmp_path):
    if engine == "single_process":
        command = [sys.executable, "-m", CHECK, str(tmp_path), "--strategy", "one_device"]
    else:
        command = [sys.executable, "-m", "trainers.launch", "--workers", "2", "--", CHECK]
        command.append(str(tmp_path))
    reports = run(command, tmp_path)
    workers = 1 if engine == "single_process" else 2
    assert sorted(reports) == list(range(workers))
    for rank, report in reports.items():
        assert report["workers"] == workers
        assert report["first_epochs"] == 2  # a fresh start trains every epoch
        assert report["second_epochs"] == 1  # the restart resumes after epoch 2
        assert report["writes"] == (rank == 0) and report["writes_to_out"] == (rank == 0)
        assert report["agreed"] == [True, False]  # the writer's answer, on every process
        assert report["scratch_removed"]
    weights = {round(r["weights"], 5) for r in reports.values()}
    assert len(weights) == 1  # every worker holds the same restored and trained weights
    assert os.path.isdir(tmp_path / "run" / "checkpoints" / "backup" / "state")
