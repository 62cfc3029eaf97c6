"""The load side of `benchmarks.serving`: test images, the direct call, the REST and gRPC
clients (one per thread, closed loop) and the model-only batching ceiling."""

import http.client
import json
import socket
import threading
import time

import numpy as np
import tensorflow as tf


def pixels(batch, side=24):
    return np.random.default_rng(0).integers(0, 256, size=(batch, side, side, 3), dtype=np.uint8)


def direct(signature, batch, requests, side):
    x = tf.constant(pixels(batch, side))
    for _ in range(10):
        signature(images=x)
    latencies = []
    start = time.perf_counter()
    for _ in range(requests):
        t = time.perf_counter()
        {k: v.numpy() for k, v in signature(images=x).items()}
        latencies.append(time.perf_counter() - t)
    return latencies, requests / (time.perf_counter() - start)


def model_only_batching(signature, clients, requests, side, timeout_micros):
    """req/s of `clients` threads calling the signature directly, without and with the
    server's `Batcher` (no HTTP, no JSON, no second process): the most batching can
    gain for this model on this machine."""
    from serving.batching import Batcher, BatchingOptions

    class Direct:
        name = "serving_default"

        def __call__(self, inputs):
            outputs = signature(**{k: tf.constant(v) for k, v in inputs.items()})
            return {k: v.numpy() for k, v in outputs.items()}

    direct_signature = Direct()
    x = pixels(1, side)
    batcher = Batcher(
        BatchingOptions(max_batch_size=8, num_batch_threads=1, batch_timeout_micros=timeout_micros)
    )
    plain = lambda: lambda: direct_signature({"images": x})  # noqa: E731
    batched = lambda: lambda: batcher.run(None, direct_signature, {"images": x})  # noqa: E731
    return (
        concurrently(plain, clients, requests)[1],
        concurrently(batched, clients, requests)[1],
    )


def concurrently(make_call, clients, requests):
    """Runs `clients` threads, each `requests` timed calls (after 20 untimed: every batch
    size the batching server forms meets the model once before timing); returns the
    latencies and the requests/s of the timed calls (first timed start to last end)."""
    latencies, spans, lock, errors = [], [], threading.Lock(), []

    def worker():
        try:
            call = make_call()
            mine = []
            for i in range(requests + 20):
                t = time.perf_counter()
                if i == 20:
                    first = t
                call()
                if i >= 20:
                    mine.append(time.perf_counter() - t)
            with lock:
                latencies.extend(mine)
                spans.append((first, time.perf_counter()))
        except Exception as error:  # noqa: BLE001
            errors.append(repr(error))

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[0])
    elapsed = max(end for _, end in spans) - min(start for start, _ in spans)
    return latencies, clients * requests / elapsed


def rest_call(port, batch, side):
    body = json.dumps({"instances": pixels(batch, side).tolist()})

    def make():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def call():
            connection.request(
                "POST", "/v1/models/gapnet:predict", body, {"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            payload = response.read()
            if response.status != 200:
                raise RuntimeError(payload)
            json.loads(payload)

        return call

    return make


def raw_rest_call(port, batch, side):
    """`rest_call` as a lean load generator: one prebuilt HTTP/1.1 request on a raw
    socket, the reply read by its `Content-Length` (http.client parses each reply's
    headers with the email package: ~0.1 ms of the client's GIL per request)."""
    body = json.dumps({"instances": pixels(batch, side).tolist()}).encode()
    request = (
        "POST /v1/models/gapnet:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body

    def make():
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def call():
            sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("connection closed")
                data += chunk
            head, _, payload = data.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in lines
                if line.lower().startswith(b"content-length:")
            )
            while len(payload) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("connection closed")
                payload += chunk
            if lines[0].split()[1] != b"200":
                raise RuntimeError(payload)
            json.loads(payload)

        return call

    return make


def grpc_call(port, batch, side):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "gapnet"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(pixels(batch, side)))

    def make():
        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{port}")
        )

        def call():
            response = stub.Predict(request, timeout=60)
            tf.make_ndarray(response.outputs["probabilities"])

        return call

    return make
