"""Infra validation of a push candidate, run in a separate Python process.

`infra_validate(path)` starts `python -m trainers.delivery.validate PATH REPORT`, whose
`infra_check` loads the staged SavedModel with the server's own loader
(`serving.servable.Servable`, or `tf.saved_model.load` without it), replays its warm-up
records, sends a canary request per signature, checks that every output is finite and
shaped as the signature says, and times load, warm-up and canaries; `infra_check_entry`
turns that report into the push's `infra` check.
"""

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tfposenc.export import example_input, signature_defs

try:  # the server's own loader
    from serving.servable import Servable
except ImportError:
    Servable = None

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
CANARY_BATCH = 2
CANARY_REPEATS = 5
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def one_line(error):
    """`error`'s whole message on one line: TensorFlow's start "Graph execution
    error:" and a blank line, so a reader of the first line lost the cause."""
    return " ".join(str(error).split())


def infra_check(path):
    """Loads the SavedModel at `path` as the server does and sends it requests.

    Returns a dict: `ok`, `failures` (list of str), `loader`, `load_seconds`,
    `warmup_records`, `warmup_seconds` and per signature the canary's `latency_ms`
    (median of `CANARY_REPEATS` calls of batch `CANARY_BATCH`).
    """
    report = {"path": path, "failures": []}
    failures = report["failures"]
    try:
        start = time.perf_counter()
        servable = _Loaded(path)
        report["loader"] = servable.loader
        report["load_seconds"] = round(time.perf_counter() - start, 3)
        start = time.perf_counter()
        report["warmup_records"] = servable.warm_up()
        report["warmup_seconds"] = round(time.perf_counter() - start, 3)
        definitions = signature_defs(path)
    except Exception as error:  # noqa: BLE001 - any load failure refuses the candidate
        failures.append(f"load and warm-up: {type(error).__name__}: {one_line(error)}")
        report["ok"] = False
        return report
    if not report["warmup_records"]:
        failures.append(f"warm-up: no records in {WARMUP_FILE}")
    report["signatures"] = {}
    for name in sorted(servable.signatures):
        definition = definitions[name]
        inputs = {
            key: example_input(info, CANARY_BATCH, "random", seed=17)
            for key, info in definition.inputs.items()
        }
        latencies = []
        try:
            for _ in range(CANARY_REPEATS):
                start = time.perf_counter()
                outputs = servable.predict(name, inputs)
                latencies.append(time.perf_counter() - start)
        except Exception as error:  # noqa: BLE001
            failures.append(f"canary {name}: {type(error).__name__}: {one_line(error)}")
            continue
        report["signatures"][name] = {"latency_ms": round(1000 * float(np.median(latencies)), 3)}
        failures += _output_failures(name, definition, outputs)
    report["ok"] = not failures
    return report


def _output_failures(name, definition, outputs):
    failures = []
    if set(outputs) != set(definition.outputs):
        failures.append(
            f"canary {name}: outputs {sorted(outputs)} != signature's {sorted(definition.outputs)}"
        )
    for key, value in sorted(outputs.items()):
        if key not in definition.outputs:
            continue
        value = np.asarray(value)
        shape = tf.TensorShape(
            None
            if definition.outputs[key].tensor_shape.unknown_rank
            else [d.size if d.size >= 0 else None for d in definition.outputs[key].tensor_shape.dim]
        )
        if not shape.is_compatible_with(value.shape) or value.shape[:1] != (CANARY_BATCH,):
            failures.append(
                f"canary {name}: output {key!r} has shape {list(value.shape)}, signature says "
                f"{shape} for a batch of {CANARY_BATCH}"
            )
        if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
            failures.append(f"canary {name}: output {key!r} is not finite")
    return failures


class _Loaded:
    """What infra validation needs of a loaded version: `signatures`, `warm_up()`,
    `predict(signature, numpy inputs)`."""

    def __init__(self, path):
        self.path = path
        if Servable is not None:
            self.servable = Servable(0, path, warmup=False)
            self.signatures = self.servable.signatures
            self.loader = "serving.servable.Servable"
        else:
            self.servable = None
            self.module = tf.saved_model.load(path, tags=["serve"])
            self.signatures = dict(self.module.signatures)
            self.loader = "tf.saved_model.load"

    def warm_up(self):
        if self.servable is not None:
            return self.servable.warm_up()
        file, count = os.path.join(self.path, WARMUP_FILE), 0
        if os.path.exists(file):
            for record in tf.data.TFRecordDataset(file):
                request = prediction_log_pb2.PredictionLog.FromString(
                    record.numpy()
                ).predict_log.request
                inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
                self.predict(request.model_spec.signature_name or "serving_default", inputs)
                count += 1
        return count

    def predict(self, name, inputs):
        if self.servable is not None:
            return self.servable.run(name, inputs, batched=False)[1]
        outputs = self.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}


def _die_with_parent():
    """In the child, before exec: ask Linux to SIGKILL it when its parent dies, so a
    killed push never leaves its validation process running (no-op elsewhere)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def infra_validate(path, timeout=600):
    """Runs `infra_check(path)` in a fresh Python process; returns its report (with
    `ok` False and the process's last words when it died without one)."""
    with tempfile.TemporaryDirectory() as scratch:
        report_path = os.path.join(scratch, "report.json")
        command = [sys.executable, "-m", "trainers.delivery.validate", path, report_path]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
        start = time.perf_counter()
        try:
            process = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                cwd=ROOT,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        except subprocess.TimeoutExpired:
            return {"ok": False, "failures": [f"infra validation took over {timeout} s"]}
        if os.path.exists(report_path):
            with open(report_path) as f:
                report = json.load(f)
        else:
            last = (process.stderr or process.stdout).strip().splitlines()[-5:]
            report = {
                "ok": False,
                "failures": [
                    f"validation process exited {process.returncode}: " + " | ".join(last)
                ],
            }
        report["process_seconds"] = round(time.perf_counter() - start, 3)
        return report


def infra_check_entry(report):
    if report["ok"]:
        signatures = report.get("signatures", {})
        canary = ", ".join(f"{k} {v['latency_ms']:.1f} ms" for k, v in signatures.items())
        message = (
            f"loaded in {report['load_seconds']:.2f} s with {report['loader']}, "
            f"{report['warmup_records']} warm-up requests in {report['warmup_seconds']:.2f} s, "
            f"canary batch {CANARY_BATCH} median: {canary}"
        )
    else:
        message = "; ".join(report["failures"])
    return {"check": "infra", "passed": report["ok"], "message": message}


def main(argv=None):
    """The infra validation process: `python -m trainers.delivery.validate PATH REPORT`."""
    path, report_path = sys.argv[1:3] if argv is None else argv
    report = infra_check(path)
    with open(report_path, "w") as f:
        json.dump(report, f)
    return 0 if report["ok"] else 1


__all__ = ["CANARY_BATCH", "WARMUP_FILE", "infra_check", "infra_check_entry", "infra_validate"]

if __name__ == "__main__":
    raise SystemExit(main())
