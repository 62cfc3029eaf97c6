"""Budgets under load and bad input (issue "Under load and bad input", E1-E6, E13, E14).

One server with small limits (`--max_in_flight_bytes 20 MB`, 8 connections) so that each
budget trips cheaply; every connection is loopback and every wait bounded.
"""

import base64
import io
import json
import socket
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf

from serving.batching import Batcher, BatchingOptions
from serving.errors import RequestError
from serving.rest import RestApi
from tests.serving.attacks import raw_exchange, tiny_and_any
from tests.serving.savedmodels import Server, call, images

MAX_BODY = 4_500_000
IN_FLIGHT = 20_000_000
CONNECTIONS = 8


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    root = tmp_path_factory.mktemp("budgets")
    config = tiny_and_any(root)
    server = Server(
        "--model_config_file", str(config), "--rest_api_timeout_in_ms", "5000",
        "--max_request_bytes", str(MAX_BODY), "--max_in_flight_bytes", str(IN_FLIGHT),
        "--rest_api_max_connections", str(CONNECTIONS),
        "--max_image_decode_pixels", str(16 * 16 * 4),
    )  # fmt: skip
    yield server
    server.stop()


def head(length, extra=""):
    return (
        f"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: x\r\n{extra}"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def first_reply(sock, timeout=3.0):
    """What the server sends on `sock` within `timeout` s (until it closes)."""
    sock.settimeout(timeout)
    received, deadline = b"", time.time() + timeout
    while time.time() < deadline:
        try:
            part = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not part:
            break
        received += part
    return received


def test_bodies_in_flight_beyond_the_budget_are_refused_from_their_head(limited):
    holders = []
    try:
        for _ in range(IN_FLIGHT // 4_000_000):  # 5 bodies of 4 MB withheld: 20 MB
            s = socket.create_connection(("127.0.0.1", limited.port))
            s.sendall(head(4_000_000) + b'{"instances": [')
            holders.append(s)
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", limited.port)) as s:
            start = time.time()
            s.sendall(head(4_000_000))
            reply = first_reply(s)
        assert reply.startswith(b"HTTP/1.1 503 "), reply[:200]
        assert b"Retry-After: 1" in reply and b"--max_in_flight_bytes" in reply
        assert time.time() - start < 2
    finally:
        for s in holders:
            s.close()
    time.sleep(0.5)  # the withheld bodies' shares are given back when they close
    code, reply = call(f"{limited.url}/v1/models/tiny:predict", {"instances": images(1).tolist()})
    assert code == 200 and len(reply["predictions"]) == 1


def test_memory_errors_are_load_not_500():
    class Model:
        name = "m"

        def resolve(self, version, label):
            return version

        def acquire(self, version):
            class Servable:
                signatures = {}

                def signature(self, name):
                    raise MemoryError("Unable to allocate 372. MiB")

            return Servable()

        def release(self, servable):
            pass

    status, payload, headers = RestApi({"m": Model()}).answer(
        "POST", "/v1/models/m:predict", b'{"instances": [1]}'
    )
    assert status == 429 and ("Retry-After", "1") in headers
    assert b"server busy" in payload


def test_connections_beyond_the_limit_are_refused_at_once(limited):
    idle = []
    try:
        for _ in range(CONNECTIONS):
            idle.append(socket.create_connection(("127.0.0.1", limited.port)))
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", limited.port)) as s:
            start = time.time()
            s.sendall(b"GET /v1/models/tiny HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = first_reply(s, timeout=4)
        assert reply.startswith(b"HTTP/1.1 503 ") and b"too many open connections" in reply
        assert time.time() - start < 1
    finally:
        for s in idle:
            s.close()
    time.sleep(0.5)
    code, _ = call(f"{limited.url}/v1/models/tiny")
    assert code == 200


def test_expect_continue_over_the_limit_gets_413_and_no_100(limited):
    start = time.time()
    reply, closed = raw_exchange(limited.port, head(MAX_BODY + 1, "Expect: 100-continue\r\n"))
    assert reply.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in reply, reply[:200]
    assert closed and time.time() - start < 2


def test_content_length_of_thousands_of_digits_is_400(limited):
    reply, closed = raw_exchange(limited.port, head("9" * 5000))
    assert reply.startswith(b"HTTP/1.1 400 ") and b"Content-Length" in reply and closed


def jpeg(progressive):
    from PIL import Image

    data = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(data).save(out, "JPEG", progressive=progressive, quality=90)
    return base64.b64encode(out.getvalue()).decode()


def test_jpeg_decoding_work_is_budgeted_by_pixels_and_scans(limited):
    url = f"{limited.url}/v1/models/tiny:predict"
    code, reply = call(url, {"instances": [{"b64": jpeg(progressive=True)}]})  # 10 scans
    assert code == 400 and "--max_image_decode_pixels" in reply["error"], reply
    code, reply = call(url, {"instances": [{"b64": jpeg(progressive=False)}]})  # 1 scan
    assert code == 200, reply


MANY_ARRAYS = [("any", b"[]", "empty JSON arrays"), ("tiny", b"[[0]]", "JSON arrays")]


@pytest.mark.parametrize("model, row, why", MANY_ARRAYS)
def test_bodies_of_many_arrays_are_refused_before_parsing(limited, model, row, why):
    rows = (2_000_000 // (len(row) + 2)) - 1
    body = b'{"instances": [' + (row + b", ") * rows + row + b"]}"
    start = time.time()
    code, reply = call(f"{limited.url}/v1/models/{model}:predict", body, raw=True)
    assert code == 400 and why in reply["error"], reply
    assert time.time() - start < 1


def test_uint8_and_int64_values_are_strict(limited):
    url = f"{limited.url}/v1/models/any:predict"
    body = {"signature_name": "ints", "instances": [[1, 2]]}
    body_text = json.dumps(body).replace("[1, 2]", "[-9223372036854775809, 2]")
    code, reply = call(url, body_text.encode(), raw=True)
    assert code == 400 and "out of range for dtype int64" in reply["error"], reply
    one_pixel = [[[[0, 0, 0]]]]
    for bad in ("true", "255.0", "1e2"):
        text = json.dumps({"instances": one_pixel}).replace("[0, 0, 0]", f"[0, 0, {bad}]")
        code, reply = call(url, text.encode(), raw=True)
        assert code == 400 and "expected dtype uint8" in reply["error"], (bad, reply)
    code, reply = call(url, {"instances": one_pixel})
    assert code == 200


def test_grpc_refuses_string_tensors_and_long_labels_cheaply(limited):
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(limited.grpc_target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto([b"x"] * 200_000))
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(request, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "to be uint8 but string is provided" in raised.value.details()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    request.model_spec.version_label = "x" * (1 << 20)
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images(1)))
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(request, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(raised.value.details()) < 400
    channel.close()


class Signature:
    """A model that fails a batch holding a negative value; counts its calls."""

    name = "serving_default"

    def __init__(self):
        self.calls = 0

    def __call__(self, inputs):
        self.calls += 1
        x = inputs["x"]
        if (x < 0).any():
            raise RequestError("INVALID_ARGUMENT", "negative input")
        return {"y": x * 2}


def run_together(batcher, signature, values):
    """Runs one request per value at once; returns their outputs or errors."""
    results = [None] * len(values)

    def one(i):
        try:
            results[i] = batcher.run(None, signature, {"x": np.array([values[i]], np.float32)})
        except RequestError as error:
            results[i] = error

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(values))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_a_failing_request_costs_the_others_about_one_batch():
    batcher = Batcher(BatchingOptions(max_batch_size=8, batch_timeout_micros=500_000))
    signature = Signature()
    values = [1, 2, 3, 4, 5, 6, -1, 8]
    results = run_together(batcher, signature, values)
    assert isinstance(results[6], RequestError)
    for i, value in enumerate(values):
        if value > 0:
            np.testing.assert_array_equal(results[i]["y"], [2 * value])
    assert signature.calls <= 1 + 2 * 3  # the batch, then halves: 8 -> 4 -> 2 -> 1 (was 9)
    signature.calls = 0
    results = run_together(batcher, signature, values)  # the culprit is quarantined
    assert isinstance(results[6], RequestError)
    assert signature.calls == 2  # the 7 good requests in one batch, the bad one alone


class Dispatcher:
    """A waitress dispatcher on one end of a socket pair; counts how often it is asked."""

    accepting = False

    def __init__(self, sock):
        self.sock = sock
        self.asked = 0
        self.read = 0

    def readable(self):
        self.asked += 1
        return True

    def writable(self):
        return False

    def handle_read_event(self):
        self.read += 1
        self.sock.recv(100)


def test_a_loop_pass_asks_only_connections_that_may_have_changed():
    from serving.event_loop import IDLE_FLAGS, IncrementalPoll

    pairs = [socket.socketpair() for _ in range(200)]
    dispatchers = {a.fileno(): Dispatcher(a) for a, _ in pairs}
    poll = IncrementalPoll(dispatchers, lambda obj, flags: flags == IDLE_FLAGS)
    poll.run(0)  # the first pass asks all 200
    for _ in range(50):  # idle: nobody is asked again (waitress's poll2 asks all 200 twice)
        poll.run(0)
    assert sum(d.asked for d in dispatchers.values()) == 200
    pairs[7][1].send(b"x")  # an event: that one is read, then asked again
    poll.run(0.5)
    poll.run(0)
    one = dispatchers[pairs[7][0].fileno()]
    assert one.read == 1 and one.asked == 2
    poll.mark()  # after maintenance (timeouts) every one is asked again
    poll.run(0)
    assert sum(d.asked for d in dispatchers.values()) == 401
    poll.close()
    for a, b in pairs:
        a.close()
        b.close()


def test_the_default_pixel_budget_is_sized_to_its_memory_and_given_back(monkeypatch):
    from serving import budget as budget_module
    from serving.server import build_parser

    args = build_parser().parse_args([])
    # 4 x 4096^2 pixels cost 1.5 GB per request (4.4 GB held after 4 at once)
    assert args.max_request_image_pixels == 4096 * 4096
    assert args.max_request_image_pixels * budget_module.BYTES_PER_PIXEL <= args.max_in_flight_bytes
    trims = []
    monkeypatch.setattr(budget_module.malloc, "trim", lambda: trims.append(1))
    shared = budget_module.Budget(1 << 30)
    with budget_module.Reservation(shared) as reservation:
        reservation.take(4096 * 4096 * budget_module.BYTES_PER_PIXEL, "decoding its images")
        assert shared.used == 4096 * 4096 * 16
        with pytest.raises(RequestError, match="--max_in_flight_bytes") as refused:
            budget_module.Reservation(shared).take(1 << 30, "decoding the request")
        assert refused.value.code == "RESOURCE_EXHAUSTED" and refused.value.http_status == 429
    assert shared.used == 0 and trims == [1]  # a large request hands its memory back
    with budget_module.Reservation(shared) as reservation:
        reservation.take(1000, "decoding the request")
    assert trims == [1]
