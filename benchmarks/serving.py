"""Latency and throughput of `serving.server` against the direct in-process call.

    python -m benchmarks.serving [--requests 200]

Exports a tfposenc GAPNet (ResNet-18 width 16, 3x3 grid of 8-px digits = 24x24 canvases)
to a temporary base path, starts the server as a subprocess, and measures p50 / p99
latency and requests/s for batch 1 and batch 32 under 1 and 8 concurrent clients
(persistent HTTP/1.1 connections), beside the direct call of the same signature on a
`tf.saved_model.load` of the same version in this process. Target (issue "Serving"):
the server adds at most 5 ms at p50 to a batch-1 request.
"""

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import report  # noqa: E402
from tfposenc.export import export_saved_model  # noqa: E402
from tfposenc.models import GAPNet, ResNetBackbone  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def percentile(values, q):
    return 1000 * float(np.percentile(values, q))


def direct(signature, batch, requests):
    x = tf.constant(
        np.random.default_rng(0).integers(0, 256, size=(batch, 24, 24, 3), dtype=np.uint8)
    )
    for _ in range(10):
        signature(images=x)
    latencies = []
    start = time.perf_counter()
    for _ in range(requests):
        t = time.perf_counter()
        {k: v.numpy() for k, v in signature(images=x).items()}
        latencies.append(time.perf_counter() - t)
    return latencies, requests / (time.perf_counter() - start)


def over_http(port, batch, clients, requests):
    x = np.random.default_rng(0).integers(0, 256, size=(batch, 24, 24, 3)).tolist()
    body = json.dumps({"instances": x})
    latencies, lock = [], threading.Lock()

    def worker():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        for i in range(requests + 5):
            t = time.perf_counter()
            connection.request(
                "POST", "/v1/models/gapnet:predict", body, {"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            payload = response.read()
            if response.status != 200:
                raise RuntimeError(payload)
            json.loads(payload)
            if i >= 5:
                mine.append(time.perf_counter() - t)
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, clients * requests / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="per client")
    args = parser.parse_args(argv)
    base = os.path.join(tempfile.mkdtemp(), "gapnet")
    model = GAPNet(ResNetBackbone(18, "paper", 16), 9)
    path = export_saved_model(model, base, image_shape=(24, 24))
    signature = tf.saved_model.load(path).signatures["serving_default"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=ROOT)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving.server",
            "--model_name",
            "gapnet",
            "--model_base_path",
            base,
            "--rest_api_port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        rows = []
        for batch in (1, 32):
            lat, rate = direct(signature, batch, args.requests)
            d50 = percentile(lat, 50)
            rows.append(
                (
                    f"direct call, batch {batch}",
                    f"p50 {d50:.2f} ms",
                    f"p99 {percentile(lat, 99):.2f} ms",
                    f"{rate:.0f} req/s",
                )
            )
            for clients in (1, 8):
                lat, rate = over_http(port, batch, clients, args.requests)
                rows.append(
                    (
                        f"server, batch {batch}, {clients} client(s)",
                        f"p50 {percentile(lat, 50):.2f} ms",
                        f"p99 {percentile(lat, 99):.2f} ms",
                        f"{rate:.0f} req/s",
                        f"+{percentile(lat, 50) - d50:.2f} ms p50 over direct"
                        if clients == 1
                        else "",
                    )
                )
        report(
            "REST server vs direct signature call (GAPNet ResNet-18 width 16, 24x24 uint8)", rows
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
