"""Latency and throughput of `serving.server` (REST, gRPC, batching) against the direct call.

    python -m benchmarks.serving [--requests 200] [--models small gapnet96] [--switches 3]
        [--rounds 5] [--max-batch-size 8] [--num-batch-threads 1] [--batch-timeout-micros 10000]

For each of two models, tfposenc's GAPNet (ResNet-18 width 16) on 24x24 canvases (the
3x3 grid of 8-px digits; a model call of about 1.4 ms) and on the paper's 96x96 canvases
(about 3 ms for one image, 13 ms for eight), exports it to a temporary base path and
starts four servers as subprocesses: plain and `--enable_batching`, each with
TensorFlow's default threads and with `--tensorflow_intra_op_parallelism 1`.

Latency (small model, one client, default threads): p50 / p99 of REST (http.client,
persistent HTTP/1.1) and gRPC (the official stubs) at batch 1 and 32, beside the direct
call of the same signature on a `tf.saved_model.load` of the same version here.
Every comparison runs its configurations in interleaved rounds (`--rounds`, each
`requests / rounds` calls per client): this machine is shared and its speed drifts by
tens of percent within a minute, so measuring one configuration after the other made
ratios swing with the drift.

Throughput: 8 closed-loop batch-1 clients (REST through a lean raw-socket load
generator, gRPC one channel each) against the plain and the batching server, for both
thread settings. The batching server merges up to 8 requests per model call, waits at
most `--batch-timeout-micros` (10 ms) for a batch to fill and runs one batch at a time
(with 2 ms the 8 clients split into two alternating batches of ~4). One thread per op is
the throughput setting for this small model: its ops are too small to share between
two cores, so with TensorFlow's default (one thread per core) a batch keeps both cores
half busy while the next requests wait for the GIL; with one thread per op the batch
runs on one core while the other parses the next requests (measured over six runs:
batching 1.46-1.63x over REST and 1.41-1.63x over gRPC, against 0.9-1.4x with the
default threads; the plain server is about as fast either way). A last
row per model is the most batching can gain for it here: 8 threads calling the
signature in this process, directly and through the server's `Batcher`, with no HTTP,
JSON or second process (1.41-1.76x over the same six runs). At 96x96 batching does not
pay on two cores: 8 concurrent batch-1 calls already keep both busy and the model alone
gains only ~1.3x.

Last, the latency of the first request after a version switch (small model), with and
without warm-up records.

Targets (issue "Serving contract"): batch-32 REST p50 at most 2x the direct call;
8 concurrent batch-1 clients with batching at least 1.5x the requests/s without it;
gRPC batch-1 p50 at most 2 ms over the direct call.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import report  # noqa: E402
from benchmarks.serving_load import (  # noqa: E402
    direct_call,
    grpc_call,
    interleaved,
    model_only_batching,
    pixels,
    raw_rest_call,
    rest_call,
)
from tfposenc.export import export_saved_model  # noqa: E402
from tfposenc.models import GAPNet, ResNetBackbone  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def batching_config(options):
    """`options` (BatchingParameters field -> value) as a `BatchingParameters` text."""
    return "".join(f"{name} {{ value: {value} }}\n" for name, value in options.items())


def percentile(values, q):
    return 1000 * float(np.percentile(values, q))


MODELS = {"small": 24, "gapnet96": 96}  # name -> canvas side


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(base, *flags, root=ROOT):
    """A `serving.server` of checkout `root` (default: this one) on free ports."""
    rest, grpc_port = free_port(), free_port()
    command = [sys.executable, "-m", "serving.server", "--model_name", "gapnet"]
    command += ["--model_base_path", base, "--rest_api_port", str(rest), "--port", str(grpc_port)]
    process = subprocess.Popen(
        [*command, *flags],
        cwd=root,
        env=dict(os.environ, PYTHONPATH=root),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", rest), timeout=0.2):
                return process, rest, grpc_port
        except OSError:
            if time.time() > deadline or process.poll() is not None:
                raise RuntimeError("server did not start") from None
            time.sleep(0.1)


def write_warmup(version_path, batches):
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    path = os.path.join(version_path, "assets.extra", "tf_serving_warmup_requests")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for batch in batches:
            request = predict_pb2.PredictRequest()
            request.inputs["images"].CopyFrom(tf.make_tensor_proto(pixels(batch)))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


def first_request_after_switch(base, source, rounds):
    """Copies `source` as new versions (alternately without and with warm-up records) and
    times the first request once the server reports each one; returns `{bool: [s]}`."""
    process, port, _ = start_server(base, "--file_system_poll_wait_seconds", "0.1")
    times = {False: [], True: []}
    body = json.dumps({"instances": pixels(1).tolist()})
    try:
        version = max(int(v) for v in os.listdir(base))
        for i in range(2 * rounds):
            warm = bool(i % 2)
            version += 1
            staging = os.path.join(base, f".tmp-{version}")
            shutil.copytree(source, staging)
            shutil.rmtree(os.path.join(staging, "assets.extra"), ignore_errors=True)
            if warm:
                write_warmup(staging, [1, 8, 32])
            os.rename(staging, os.path.join(base, str(version)))
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            while True:
                connection.request("GET", "/v1/models/gapnet/metadata")
                response = connection.getresponse()
                if json.loads(response.read())["model_spec"]["version"] == str(version):
                    break
                time.sleep(0.01)
            start = time.perf_counter()
            connection.request("POST", f"/v1/models/gapnet/versions/{version}:predict", body)
            connection.getresponse().read()
            times[warm].append(time.perf_counter() - start)
            connection.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="per client")
    parser.add_argument("--switches", type=int, default=3, help="version switches of each kind")
    parser.add_argument(
        "--models", nargs="+", choices=sorted(MODELS), default=list(MODELS), help="models to serve"
    )
    parser.add_argument(
        "--batch-timeout-micros",
        type=int,
        default=10000,
        help="the batching server's batch_timeout_micros",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternations of the configurations compared"
    )
    parser.add_argument(
        "--max-batch-size", type=int, default=8, help="the batching server's max_batch_size"
    )
    parser.add_argument(
        "--num-batch-threads", type=int, default=1, help="the batching server's num_batch_threads"
    )
    parser.add_argument(
        "--baseline",
        default=None,
        help="another checkout (e.g. a `git worktree` of an older commit): its plain servers "
        "join the interleaved REST/gRPC rows as 'baseline', for before/after in one run",
    )
    args = parser.parse_args(argv)
    for name in ("requests", "rounds", "max_batch_size", "num_batch_threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, received {getattr(args, name)}")
    options = dict(  # the batching server's and the model-only Batcher's
        max_batch_size=args.max_batch_size,
        batch_timeout_micros=args.batch_timeout_micros,
        num_batch_threads=args.num_batch_threads,
        max_enqueued_batches=100,
    )
    work = tempfile.mkdtemp()
    batching_file = os.path.join(work, "batching.config")
    with open(batching_file, "w") as f:
        f.write(batching_config(options))
    rows = []

    def row(name, latencies, rate, base_p50=None):
        extra = (
            f"+{percentile(latencies, 50) - base_p50:.2f} ms p50 over direct" if base_p50 else ""
        )
        rows.append(
            (
                name,
                f"p50 {percentile(latencies, 50):.2f} ms",
                f"p99 {percentile(latencies, 99):.2f} ms",
                f"{rate:.0f} req/s",
                extra,
            )  # fmt: skip
        )
        return rate

    for model_name in args.models:
        side = MODELS[model_name]
        base = os.path.join(work, model_name, "gapnet")
        model = GAPNet(ResNetBackbone(18, "paper", 16), 9)
        path = export_saved_model(model, base, image_shape=(side, side))
        shutil.rmtree(os.path.join(path, "assets.extra"), ignore_errors=True)
        signature = tf.saved_model.load(path).signatures["serving_default"]
        batching_flags = ("--enable_batching", "--batching_parameters_file", batching_file)
        one_thread = ("--tensorflow_intra_op_parallelism", "1")
        servers = {  # (threads per op, batching) -> (process, REST port, gRPC port)
            ("default", False): start_server(base),
            ("default", True): start_server(base, *batching_flags),
            ("1", False): start_server(base, *one_thread),
            ("1", True): start_server(base, *one_thread, *batching_flags),
        }
        if args.baseline:
            servers["default", "baseline"] = start_server(base, root=args.baseline)
            servers["1", "baseline"] = start_server(base, *one_thread, root=args.baseline)
        label = f"{side}x{side}"
        try:
            if model_name == "small":  # latency: one client, TensorFlow's default threads
                plain = servers["default", False]
                for batch in (1, 32):
                    calls = {
                        "direct": direct_call(signature, batch, side),
                        "REST": rest_call(plain[1], batch, side),
                        "gRPC": grpc_call(plain[2], batch, side),
                    }
                    if args.baseline:
                        old = servers["default", "baseline"]
                        calls["REST (baseline)"] = rest_call(old[1], batch, side)
                        calls["gRPC (baseline)"] = grpc_call(old[2], batch, side)
                    results = interleaved(calls, 1, args.requests, args.rounds)
                    lat, rate = results.pop("direct")
                    d50 = percentile(lat, 50)
                    row(f"{label}: direct call, batch {batch}", lat, rate)
                    for api, (lat, rate) in results.items():
                        row(f"{label}: {api}, batch {batch}, 1 client", lat, rate, d50)
                        if batch == 32 and api.startswith("REST"):
                            rows.append(
                                (
                                    f"{label}: {api} batch 32 p50 / direct p50",
                                    f"{percentile(lat, 50) / d50:.2f}x",
                                )
                            )
            # throughput: 8 closed-loop batch-1 clients (the lean REST load generator)
            for threads in ("1", "default"):
                rates = {}
                for api, make, index in (("REST", raw_rest_call, 1), ("gRPC", grpc_call, 2)):
                    kinds = (False, True, "baseline") if args.baseline else (False, True)
                    results = interleaved(
                        {kind: make(servers[threads, kind][index], 1, side) for kind in kinds},
                        8, args.requests, args.rounds,
                    )  # fmt: skip
                    for kind, (lat, rate) in results.items():
                        rates[api, kind] = row(
                            f"{label}: {api}, 8 clients, {threads} thread(s) per op"
                            + {False: "", True: ", batching", "baseline": ", baseline"}[kind],
                            lat, rate,
                        )  # fmt: skip
                for api in ("REST", "gRPC"):
                    gain = rates[api, True] / rates[api, False]
                    rows.append(
                        (
                            f"{label}: {api} batching speed-up, {threads} thread(s) per op",
                            f"{gain:.2f}x",
                        )
                    )
            plain_rate, batched_rate = model_only_batching(
                signature, 8, args.requests, side, options, args.rounds
            )
            rows.append(
                (
                    f"{label}: model only (8 threads, no server), batching speed-up",
                    f"{batched_rate / plain_rate:.2f}x",
                    f"({plain_rate:.0f} -> {batched_rate:.0f} req/s)",
                )  # fmt: skip
            )
        finally:
            for process, _, _ in servers.values():
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
        if model_name != "small" or not args.switches:
            continue
        times = first_request_after_switch(base, path, args.switches)
        for warm in (False, True):
            values = ", ".join(f"{1000 * t:.1f}" for t in times[warm])
            rows.append(
                (
                    f"first request after a version switch, {'with' if warm else 'no'} warm-up",
                    f"median {1000 * float(np.median(times[warm])):.1f} ms",
                    f"({values} ms)",
                )  # fmt: skip
            )
    report("Model server vs direct signature call (GAPNet ResNet-18 width 16, uint8)", rows)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
