"""Multi-worker training over loopback: trainers.launch, TF_CONFIG, equivalence, SIGKILL.

Each test starts real worker processes (`python -m trainers.launch`), so each costs a
few TensorFlow start-ups; the smoke run is one combination (GAPNet) of the channel-wise
smoke preset.
"""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from trainers.framework.multiworker import cluster, launch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def launcher(args, tmp_path, **kwargs):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", TMPDIR=str(tmp_path / "tmp"))
    os.makedirs(tmp_path / "tmp", exist_ok=True)
    command = [sys.executable, "-m", "trainers.launch", *args]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        **kwargs,
    )  # fmt: skip


def tf_config(cluster, kind="worker", index=0):
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})}


TWO = {"worker": ["localhost:2001", "localhost:2002"]}


@pytest.mark.parametrize(
    "environ, match",
    [
        ({}, "it is unset or empty"),
        ({"TF_CONFIG": '{"cluster": {"worker": ["localhost:2001"]'}, "it is not valid JSON"),
        (tf_config(TWO, index=2), "task index 2 is out of range: job 'worker' has 2"),
        (tf_config(TWO, index=-1), "task index -1 is out of range"),
        (tf_config(TWO, kind="chief"), "task type 'chief' is not a job of `cluster`"),
        (tf_config({"chief": [], "worker": []}), "the cluster has no chief"),
        (tf_config({"chief": ["a:1", "b:2"], "worker": []}, "chief"), "exactly one address"),
        (tf_config({"ps": ["a:1"], "worker": ["b:2"]}), "job 'ps' is not supported"),
        (tf_config({"worker": ["localhost"]}), "list of 'host:port' addresses"),
        ({"TF_CONFIG": json.dumps({"cluster": TWO})}, "`task` is missing"),
    ],
)
def test_bad_tf_config_names_the_variable_and_the_problem(environ, match):
    with pytest.raises(ValueError, match=re.escape(match)) as info:
        cluster.task_from_environment(environ)
    assert str(info.value).startswith("`TF_CONFIG` must describe")
    assert "Received: TF_CONFIG=" in str(info.value)


def test_tf_config_tasks_and_the_chief():
    task = cluster.task_from_environment(tf_config(TWO, index=1))
    assert (task.type, task.index, task.num_workers, task.is_chief, task.rank) == (
        "worker", 1, 2, False, 1,
    )  # fmt: skip
    with_chief = {"chief": ["h:1"], "worker": ["h:2", "h:3"]}
    assert cluster.task_from_environment(tf_config(with_chief, "chief")).is_chief
    worker = cluster.task_from_environment(tf_config(with_chief, "worker", 0))
    assert not worker.is_chief and worker.rank == 1 and worker.num_workers == 3
    assert cluster.task_from_environment(tf_config(TWO, index=0)).is_chief


def test_the_trainer_refuses_a_bad_tf_config_with_one_line_and_writes_nothing(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    env.update(tf_config(TWO, index=5))
    out = tmp_path / "run"
    args = ["--preset", "smoke", "--strategy", "multi_worker", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "trainers.channelwise", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "`TF_CONFIG`" in line and "task index 5 is out of range" in line
    assert not out.exists()


def test_launcher_command_and_configs():
    configs = [json.loads(c) for c in launch.tf_configs(3)]
    addresses = configs[0]["cluster"]["worker"]
    assert len(set(addresses)) == 3 and all(a.startswith("127.0.0.1:") for a in addresses)
    assert [c["task"]["index"] for c in configs] == [0, 1, 2]
    assert all(c["cluster"] == configs[0]["cluster"] for c in configs)
    assert launch.worker_command("m", ["--x"])[-2:] == ["--strategy", "multi_worker"]
    assert (
        launch.worker_command("m", ["--strategy=multi_worker"]).count("--strategy=multi_worker")
        == 1
    )
    with pytest.raises(ValueError, match="Received: --strategy mirrored"):
        launch.worker_command("m", ["--strategy", "mirrored"])
    assert launch.exit_code(-9) == 137 and launch.exit_code(3) == 3


def test_one_and_two_workers_train_as_fit_does(tmp_path):
    """Per-step losses of `model.fit`, 1 worker and 2 workers (same seed, data order,
    global batch 16, Adam): 1 worker equals `fit` exactly (the same float operations);
    2 workers sum two half-batch gradients in the all-reduce, which changes rounding
    only: float32 (eps 1.2e-7), and the step loss recovered from running means as
    n * m_n - (n - 1) * m_(n-1) with n <= 8 multiplies that by ~16, hence rtol 1e-5."""
    out = str(tmp_path / "losses.json")
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    module = [sys.executable, "-m", "tests.trainers.framework.multiworker_loop"]
    started = [subprocess.Popen([*module, out, "--fit"], cwd=ROOT, env=env)]
    for workers, path in ((2, out), (1, out + "-1")):  # all three at once: start-up dominates
        command = [sys.executable, "-m", "trainers.launch", "--workers", str(workers), "--"]
        started.append(subprocess.Popen([*command, "tests.trainers.framework.multiworker_loop", path],
                                        cwd=ROOT, env=env, stdout=subprocess.DEVNULL))  # fmt: skip
    assert [p.wait(timeout=240) for p in started] == [0, 0, 0]
    runs = {name: json.load(open(out + suffix)) for name, suffix in
            [("fit", ".fit"), ("one", "-1.0"), ("chief", ".0"), ("worker", ".1")]}  # fmt: skip
    assert [runs[k]["replicas"] for k in ("fit", "one", "chief", "worker")] == [1, 1, 2, 2]
    assert len(runs["fit"]["steps"]) == 16
    assert runs["one"]["steps"] == runs["fit"]["steps"]
    assert runs["chief"] == runs["worker"]  # every worker holds the same reduced values
    np.testing.assert_allclose(runs["chief"]["steps"], runs["fit"]["steps"], rtol=1e-5)
    np.testing.assert_allclose(runs["chief"]["weights"], runs["fit"]["weights"], rtol=1e-5)
    for ours, theirs in zip(runs["chief"]["epochs"], runs["fit"]["epochs"]):
        assert ours.keys() == theirs.keys() == {"loss", "accuracy"}
        np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-5)
        assert ours["accuracy"] == theirs["accuracy"]
    assert runs["fit"]["steps"][-1] < runs["fit"]["steps"][0]  # it learns


def test_two_workers_run_the_channelwise_smoke_preset_and_only_the_chief_writes(tmp_path):
    out = tmp_path / "run"
    args = ["--workers", "2", "--", "trainers.channelwise", "--preset", "smoke"]
    proc = launcher([*args, "--networks", "gapnet", "--out", str(out)], tmp_path)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    for worker in (0, 1):
        assert re.search(
            rf"\[worker {worker}\] channelwise: 1 combinations, 2 replica\(s\) in sync, worker {worker} of 2 workers",
            output,
        ), output
    assert "[worker 0] done in" in output and "[worker 1] done in" in output
    assert "[worker 1] done in" in output and "the chief wrote the results" in output
    assert "[worker 1]    k2-zero-gapnet-location-seed0:" not in output  # no result line there
    assert "[worker 0] | zero |" in output  # the chief prints results.md
    name = "k2-zero-gapnet-location-seed0"
    summary = json.load(open(out / "results.json"))
    assert summary["distribution"] == {
        "strategy": "CollectiveAllReduceStrategy", "replicas_in_sync": 2, "workers": 2,
    }  # fmt: skip
    assert json.load(open(out / "config.json"))["distribution"]["replicas_in_sync"] == 2
    assert json.load(open(out / "config.json"))["strategy"] == "multi_worker"
    assert summary["results"][0]["epochs_trained"] == 2
    epochs = [json.loads(line)["epoch"] for line in open(out / "metrics.jsonl")]
    assert epochs == [1, 2]  # one writer: the chief
    assert glob.glob(str(out / "tensorboard" / name / "events.*"))  # one run per combination
    assert os.path.isfile(out / "exports" / name / "1" / "saved_model.pb")
    assert os.path.isfile(out / "models" / f"{name}.keras")
    assert os.listdir(tmp_path / "tmp") == []  # worker 1's directory was removed


def test_a_killed_worker_stops_the_job_and_the_rerun_resumes_to_exact_epochs(tmp_path):
    out = tmp_path / "run"
    args = ["--workers", "2", "--grace", "3", "--", "tests.trainers.framework.tiny_experiment",
            "--units", "1", "--epochs", "3", "--no-export", "--out", str(out)]  # fmt: skip
    proc = launcher(args, tmp_path)
    first = proc.stdout.readline()
    pids = [int(p) for p in first.split("pids ")[1].split()]
    state = out / "checkpoints" / "tiny1" / "backup" / "state" / "training_metadata.json"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None and not state.exists():
        time.sleep(0.02)
    assert proc.poll() is None and state.exists(), first + proc.stdout.read()
    os.kill(pids[1], signal.SIGKILL)  # worker 1, in epoch 2
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 137, output
    assert "worker 1 exited with code 137; stopping the others" in output
    assert not (out / "results.json").exists()
    proc = launcher(args, tmp_path)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    epochs = [json.loads(line)["epoch"] for line in open(out / "metrics.jsonl")]
    assert sorted(set(epochs)) == [1, 2, 3] and epochs.count(1) == 1
    assert json.load(open(out / "results.json"))["results"][0]["epochs_trained"] == 3
