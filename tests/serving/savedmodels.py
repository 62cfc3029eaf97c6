"""Tiny SavedModels and a server subprocess for the serving tests (no tfposenc needed).

`write_version(base, seed)` saves a `tf.Module` classifier of 16x16 uint8 images as the
next integer version under `base`, atomically (staged, then renamed) as exporters do.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = 16
CLASSES = 4
FEATURES = 16


class TinyClassifier(tf.Module):
    """Mean-pools 4x4 cells of a uint8 image, then two dense layers: logits of 4 classes."""

    def __init__(self, seed, size=SIZE):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.size = size
        cells = 4 * 4 * 3
        self.w1 = tf.Variable(rng.normal(size=(cells, FEATURES)).astype("float32"))
        self.w2 = tf.Variable(rng.normal(size=(FEATURES, CLASSES)).astype("float32"))
        spec = tf.TensorSpec([None, size, size, 3], tf.uint8, name="images")
        self.serve = tf.function(self._serve, input_signature=[spec])
        self.pooled = tf.function(self._pooled, input_signature=[spec])

    def _features(self, images):
        x = tf.cast(images, tf.float32) / 255.0
        cell = self.size // 4
        x = tf.nn.avg_pool2d(x, cell, cell, "VALID")
        x = tf.reshape(x, [-1, 4 * 4 * 3])
        return tf.nn.relu(tf.matmul(x, self.w1))

    def _serve(self, images):
        logits = tf.matmul(self._features(images), self.w2)
        return {
            "probabilities": tf.nn.softmax(logits),
            "logits": logits,
            "classes": tf.argmax(logits, axis=-1),
        }

    def _pooled(self, images):
        return {"features": self._features(images)}


def numpy_logits(module, images):
    """The oracle: the same classifier in numpy."""
    x = np.asarray(images, np.float32) / 255.0
    n, cell = len(x), module.size // 4
    x = x.reshape(n, 4, cell, 4, cell, 3).mean(axis=(2, 4)).reshape(n, -1)
    return np.maximum(x @ module.w1.numpy(), 0) @ module.w2.numpy()


def save(module, path, signatures=None):
    """Saves `module` at `path` atomically (staging directory, then rename)."""
    staging = f"{path}.tmp-{os.getpid()}"
    if signatures is None:
        signatures = {"serving_default": module.serve, "pooled_features": module.pooled}
    tf.saved_model.save(module, staging, signatures=signatures)
    os.replace(staging, path)
    return path


def write_version(base, seed, version=None):
    """Saves a `TinyClassifier(seed)` as `version` (default: next integer) under `base`."""
    os.makedirs(base, exist_ok=True)
    if version is None:
        existing = [int(n) for n in os.listdir(base) if n.isascii() and n.isdigit()]
        version = max(existing, default=0) + 1
    path = os.path.join(str(base), str(version))
    if os.path.exists(path):
        shutil.rmtree(path)
    return save(TinyClassifier(seed), path)


def images(n, seed=0, size=SIZE):
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3)).astype("uint8")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m serving.server` in a subprocess on free loopback ports (REST and gRPC)."""

    def __init__(self, *args, grpc=True):
        self.port = free_port()
        self.grpc_port = free_port() if grpc else 0
        self.url = f"http://127.0.0.1:{self.port}"
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
        command = [sys.executable, "-m", "serving.server", "--rest_api_port", str(self.port)]
        command += ["--port", str(self.grpc_port), *args]
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.proc.stdout.read())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        self.proc.kill()
        raise RuntimeError("server did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        output, _ = self.proc.communicate(timeout=30)
        return self.proc.returncode, output

    def peak_memory_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")


def call(url, body=None, raw=False, method=None, timeout=30):
    """GET (no body) or POST JSON; returns (HTTP status, decoded JSON reply)."""
    data = None if body is None else body if raw else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for(condition, timeout, interval=0.05):
    """Polls `condition()` until it returns a true value or `timeout` seconds pass."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    return condition()


def write_warmup(version_path, batches, signature_name="serving_default", raw=None):
    """Writes TF Serving's `assets.extra/tf_serving_warmup_requests` (PredictionLog
    records, one predict request per uint8 batch), or `raw` bytes as that file."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    path = os.path.join(str(version_path), "assets.extra", "tf_serving_warmup_requests")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if raw is not None:
        with open(path, "wb") as f:
            f.write(raw)
        return path
    with tf.io.TFRecordWriter(path) as writer:
        for batch in batches:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "warmup"
            request.model_spec.signature_name = signature_name
            request.inputs["images"].CopyFrom(tf.make_tensor_proto(batch))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path
