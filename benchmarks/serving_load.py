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


def direct_call(signature, batch, side):
    """The direct call of the signature, as a `concurrently` call factory."""
    x = tf.constant(pixels(batch, side))

    def make():
        return lambda: {k: v.numpy() for k, v in signature(images=x).items()}

    return make


def model_only_batching(signature, clients, requests, side, options, rounds=1):
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
    batcher = Batcher(BatchingOptions(**options))
    plain = lambda: lambda: direct_signature({"images": x})  # noqa: E731
    batched = lambda: lambda: batcher.run(None, direct_signature, {"images": x})  # noqa: E731
    results = interleaved({False: plain, True: batched}, clients, requests, rounds)
    return results[False][1], results[True][1]


def interleaved(makes, clients, requests, rounds):
    """`concurrently` for each of `makes` (name -> call factory) in turn, `rounds` times
    over, `requests / rounds` calls per client each time: on a shared machine whose speed
    drifts by tens of percent within a minute, the configurations compared see the same
    drift. Returns `{name: (latencies, requests/s over all rounds)}`."""
    per_round = max(1, -(-requests // rounds))
    latencies = {name: [] for name in makes}
    elapsed = dict.fromkeys(makes, 0.0)
    for round_index in range(rounds):
        for name, make in makes.items():
            lat, seconds = concurrently(make, clients, per_round, 20 if round_index == 0 else 5)
            latencies[name] += lat
            elapsed[name] += seconds
    return {name: (latencies[name], clients * per_round * rounds / elapsed[name]) for name in makes}


def concurrently(make_call, clients, requests, warmup=20):
    """Runs `clients` threads, each `requests` timed calls (after `warmup` untimed: every
    batch size the batching server forms meets the model once before timing); returns
    the latencies and the seconds from the first timed start to the last end."""
    latencies, spans, lock, errors = [], [], threading.Lock(), []

    def worker():
        try:
            call = make_call()
            mine = []
            for i in range(requests + warmup):
                t = time.perf_counter()
                if i == warmup:
                    first = t
                call()
                if i >= warmup:
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
    return latencies, max(end for _, end in spans) - min(start for start, _ in spans)


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
