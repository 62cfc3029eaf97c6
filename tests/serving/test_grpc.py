import os
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving import client
from serving.batching import Batcher, BatchingOptions
from serving.errors import RequestError
from tests.serving.savedmodels import Server, call, images, write_version


def stubs(server):
    channel = grpc.insecure_channel(server.grpc_target)
    return (
        prediction_service_pb2_grpc.PredictionServiceStub(channel),
        model_service_pb2_grpc.ModelServiceStub(channel),
    )


def predict_request(x, name="tiny", version=None, signature_name="", input_name="images"):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    request.inputs[input_name].CopyFrom(tf.make_tensor_proto(x))
    return request


def test_grpc_predict_equals_rest_and_saved_model_load(server, base_path):
    x = images(3, seed=5)
    reference = tf.saved_model.load(os.path.join(base_path, "1")).signatures["serving_default"](
        images=tf.constant(x)
    )
    prediction, _ = stubs(server)
    response = prediction.Predict(predict_request(x), timeout=30)
    assert response.model_spec.name == "tiny" and response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    outputs = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
    rest = client.predict(server.url, "tiny", x, columnar=True)
    for name in ("probabilities", "logits", "classes"):
        np.testing.assert_array_equal(outputs[name], reference[name].numpy())
        np.testing.assert_allclose(rest[name], outputs[name], rtol=1e-6, atol=1e-7)
    filtered = prediction.Predict(
        predict_pb2.PredictRequest(
            model_spec=predict_request(x).model_spec,
            inputs=predict_request(x).inputs,
            output_filter=["classes"],
        ),
        timeout=30,
    )
    assert set(filtered.outputs) == {"classes"}


def test_grpc_metadata_and_status_match_rest(server):
    prediction, model = stubs(server)
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "tiny"
    meta = prediction.GetModelMetadata(request, timeout=30)
    assert client.grpc_metadata(server.grpc_target, "tiny") == client.metadata(server.url, "tiny")
    signatures = get_model_metadata_pb2.SignatureDefMap()
    meta.metadata["signature_def"].Unpack(signatures)
    assert signatures.signature_def["serving_default"].inputs["images"].dtype == tf.uint8
    status = model.GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "tiny"}), timeout=30
    )
    assert [(s.version, s.state) for s in status.model_version_status] == [
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    ]


GRPC_ERRORS = [
    (
        dict(name="missing"),
        grpc.StatusCode.NOT_FOUND,
        r"Servable not found for request: Latest\(missing\)",
    ),
    (dict(version=7), grpc.StatusCode.NOT_FOUND, r"Specific\(tiny, 7\)"),
    (dict(input_name="pixels"), grpc.StatusCode.INVALID_ARGUMENT, "Sent extra: {pixels}"),
    (
        dict(x=np.zeros((1, 16, 16, 3), np.float32)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "to be uint8 but float is provided",
    ),
    (
        dict(x=np.zeros((1, 8, 16, 3), np.uint8)),
        grpc.StatusCode.INVALID_ARGUMENT,
        r"expected shape \[-1, 16, 16, 3\]",
    ),
    (
        dict(signature_name="nope"),
        grpc.StatusCode.FAILED_PRECONDITION,
        'signature name: "nope" not found',
    ),
]


@pytest.mark.parametrize("change, code, match", GRPC_ERRORS, ids=[f"bad{i}" for i in range(6)])
def test_grpc_errors_use_tf_serving_codes(server, change, code, match):
    import re

    prediction, _ = stubs(server)
    arguments = dict(x=images(1), name="tiny", version=None, signature_name="", input_name="images")
    arguments.update(change)
    with pytest.raises(grpc.RpcError) as error:
        prediction.Predict(predict_request(**arguments), timeout=30)
    assert error.value.code() == code and re.search(match, error.value.details())
    assert len(client.grpc_predict(server.grpc_target, "tiny", images(1))["classes"]) == 1


def test_grpc_concurrent_load(server):
    errors, done = [], []
    x = images(1)

    def worker():
        prediction, _ = stubs(server)
        for _ in range(50):
            try:
                response = prediction.Predict(predict_request(x), timeout=30)
                done.append(len(tf.make_ndarray(response.outputs["classes"])))
            except Exception as error:  # noqa: BLE001
                errors.append(repr(error))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and done == [1] * 400


def test_batching_parameters_parse_tf_serving_files():
    options = BatchingOptions.from_text(
        "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 20000 }\n"
        "max_enqueued_batches { value: 4 }\nnum_batch_threads { value: 2 }\n"
        "allowed_batch_sizes: 4 allowed_batch_sizes: 8\n"
        "pad_variable_length_inputs: false\n"
    )
    assert (options.max_batch_size, options.batch_timeout, options.num_batch_threads) == (
        8,
        0.02,
        2,
    )
    assert options.allowed_batch_sizes == [4, 8]
    for text, match in [
        ("max_batch_size: 8", "max_batch_size"),
        ("max_batch_size { value: 0 }", "must be a positive integer"),
        ("max_batch_size { value: 8 } allowed_batch_sizes: 4", "end with max_batch_size"),
    ]:
        with pytest.raises(ValueError, match=match):
            BatchingOptions.from_text(text)


class _RecordingSignature:
    """A stand-in model: doubles `x`, records each call's batch size and concurrency."""

    name = "serving_default"

    def __init__(self, seconds=0.01, fail=False):
        self.seconds, self.fail = seconds, fail
        self.sizes, self.running, self.most_running = [], 0, 0
        self.lock = threading.Lock()

    def __call__(self, inputs):
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self.sizes.append(len(inputs["x"]))
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
        if self.fail:
            raise RequestError("INTERNAL", "model failed")
        return {"y": 2 * inputs["x"]}


def _concurrently(batcher, signature, arrays):
    """Sends each of `arrays` from its own thread, all at once; returns answers or errors."""
    barrier, answers = threading.Barrier(len(arrays)), [None] * len(arrays)

    def worker(i):
        barrier.wait()
        try:
            answers[i] = batcher.run(None, signature, {"x": arrays[i]})["y"]
        except RequestError as error:
            answers[i] = error

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(arrays))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def _rows(n, seed):
    return np.arange(2 * n, dtype=np.float32).reshape(n, 2) + 100 * seed


@pytest.mark.parametrize("timeout_micros", [0, 2000])
@pytest.mark.parametrize("slots", [1, 2])
def test_batcher_merges_concurrent_requests_within_its_limits(timeout_micros, slots):
    signature = _RecordingSignature()
    batcher = Batcher(
        BatchingOptions(
            max_batch_size=8,
            batch_timeout_micros=timeout_micros,
            num_batch_threads=slots,
            max_enqueued_batches=100,
        )
    )
    arrays = [_rows(1 + i % 3, i) for i in range(8)]
    for _ in range(10):
        for x, y in zip(arrays, _concurrently(batcher, signature, arrays)):
            np.testing.assert_array_equal(y, 2 * x)
    # every row ran exactly once, in calls of at most 8 rows, at most `slots` at a time
    assert sum(signature.sizes) == 10 * sum(len(x) for x in arrays)
    assert max(signature.sizes) <= 8 and signature.most_running <= slots
    # requests that queue while the slots are busy share a call
    assert len(signature.sizes) < 10 * 8 * 3 / 4


def test_batcher_runs_a_full_batch_without_waiting_for_its_timeout():
    signature = _RecordingSignature(seconds=0)
    batcher = Batcher(BatchingOptions(max_batch_size=4, batch_timeout_micros=10_000_000))
    arrays = [_rows(1, i) for i in range(4)]
    start = time.monotonic()
    answers = _concurrently(batcher, signature, arrays)
    assert time.monotonic() - start < 5
    assert signature.sizes == [4]
    for x, y in zip(arrays, answers):
        np.testing.assert_array_equal(y, 2 * x)


def test_batcher_pads_to_allowed_sizes_and_gives_every_request_the_model_error():
    signature = _RecordingSignature()
    batcher = Batcher(BatchingOptions(max_batch_size=8, allowed_batch_sizes=(4, 8)))
    arrays = [_rows(1 + i % 3, i) for i in range(5)]
    for x, y in zip(arrays, _concurrently(batcher, signature, arrays)):
        np.testing.assert_array_equal(y, 2 * x)
    assert set(signature.sizes) <= {4, 8}
    failing = _RecordingSignature(fail=True)
    batcher = Batcher(BatchingOptions(max_batch_size=2, batch_timeout_micros=10_000_000))
    answers = _concurrently(batcher, failing, [_rows(1, 0), _rows(1, 1)])
    assert failing.sizes == [2, 1, 1]  # the failed batch, then each request alone
    assert [a.message for a in answers] == ["model failed", "model failed"]


class _FailingOnNegatives(_RecordingSignature):
    """Fails a call holding a negative row, as `tf.gather` fails on an index out of range."""

    def __call__(self, inputs):
        outputs = super().__call__(inputs)
        if (inputs["x"] < 0).any():
            raise RequestError("INVALID_ARGUMENT", "indices[0] = -1 is not in [0, 10)")
        return outputs


def test_batcher_gives_a_run_time_error_only_to_the_request_that_caused_it():
    signature = _FailingOnNegatives(seconds=0)
    batcher = Batcher(BatchingOptions(max_batch_size=8, batch_timeout_micros=10_000_000))
    arrays = [_rows(1, i) for i in range(7)] + [-_rows(1, 0) - 1]
    answers = _concurrently(batcher, signature, arrays)
    assert signature.sizes[0] == 8  # one batch, then each request alone
    for x, y in zip(arrays[:7], answers[:7]):
        np.testing.assert_array_equal(y, 2 * x)
    assert isinstance(answers[7], RequestError) and answers[7].code == "INVALID_ARGUMENT"


def test_batcher_runs_empty_requests_outside_batches():
    signature = _RecordingSignature(seconds=0)
    batcher = Batcher(
        BatchingOptions(max_batch_size=8, batch_timeout_micros=300_000, allowed_batch_sizes=(4, 8))
    )
    empty = np.zeros((0, 2), np.float32)
    first = threading.Thread(target=batcher.run, args=(None, signature, {"x": empty}))
    first.start()  # first in the window: its padding row would have been taken from it
    time.sleep(0.05)
    arrays = [_rows(1, i) for i in range(3)]
    for x, y in zip(arrays, _concurrently(batcher, signature, arrays)):
        np.testing.assert_array_equal(y, 2 * x)
    first.join()
    assert 0 in signature.sizes and 4 in signature.sizes


def test_batching_gives_the_unbatched_answers_and_refuses_large_requests(tmp_path, server):
    base = tmp_path / "m"
    write_version(str(base), 0)
    parameters = tmp_path / "batching.config"
    parameters.write_text(
        "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 50000 }\n"
        "num_batch_threads { value: 1 }\nmax_enqueued_batches { value: 100 }\n"
    )
    batched = Server(
        "--model_name",
        "tiny",
        "--model_base_path",
        str(base),
        "--enable_batching",
        "--batching_parameters_file",
        str(parameters),
    )
    try:
        inputs = [images(1 + i % 3, seed=10 + i) for i in range(8)]
        unbatched = [client.predict(server.url, "tiny", x, columnar=True) for x in inputs]
        answers, errors = [None] * 8, []
        barrier = threading.Barrier(8)

        def worker(i):
            barrier.wait()
            try:
                if i % 2:
                    answers[i] = client.predict(batched.url, "tiny", inputs[i], columnar=True)
                else:
                    answers[i] = client.grpc_predict(
                        batched.grpc_target, "tiny", inputs[i], input_name="images"
                    )
            except Exception as error:  # noqa: BLE001
                errors.append(repr(error))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        for got, want in zip(answers, unbatched):
            for name, dtype in [
                ("probabilities", "float32"),
                ("logits", "float32"),
                ("classes", "int64"),
            ]:
                # JSON carries float32 values exactly (shortest round-trip form)
                np.testing.assert_array_equal(
                    np.asarray(got[name], dtype), np.asarray(want[name], dtype)
                )
        with pytest.raises(
            client.ServingError, match="Task size 9 is larger than maximum input batch size 8"
        ) as error:
            client.predict(batched.url, "tiny", images(9))
        assert error.value.status == 400
        with pytest.raises(client.ServingError, match="Task size 9") as error:
            client.grpc_predict(batched.grpc_target, "tiny", images(9), input_name="images")
        assert error.value.status == "INVALID_ARGUMENT"
    finally:
        code, output = batched.stop()
    assert code == 0, output


def test_output_tensors_match_make_tensor_proto_for_every_dtype():
    from tensorflow.core.framework import tensor_pb2

    from serving.grpc_api import _fill_tensor

    rng = np.random.default_rng(0)
    arrays = [rng.random((2, 9)).astype(t) for t in ("float16", "float32", "float64")]
    arrays += [rng.integers(-100, 100, (3, 4)).astype(t) for t in ("int8", "int16", "int32")]
    arrays += [rng.integers(0, 200, (5,)).astype(t) for t in ("int64", "uint8", "uint16")]
    arrays += [rng.integers(0, 200, (1, 1)).astype(t) for t in ("uint32", "uint64")]
    arrays += [
        np.array([True, False]),
        np.zeros((0, 3), np.float32),
        np.float32(3.5).reshape(()),
        np.asfortranarray(rng.random((3, 4)).astype(np.float32)),
        rng.random((2, 3)).astype(">f4"),
        rng.random((2, 2)).astype(tf.bfloat16.as_numpy_dtype),
    ]
    for array in arrays:
        proto = tensor_pb2.TensorProto()
        _fill_tensor(proto, array)
        reference = tf.make_tensor_proto(array)
        assert proto.dtype == reference.dtype and proto.tensor_shape == reference.tensor_shape
        np.testing.assert_array_equal(tf.make_ndarray(proto), tf.make_ndarray(reference))
    strings = np.array([b"ab", b"c"], dtype=object)
    proto = tensor_pb2.TensorProto()
    _fill_tensor(proto, strings)
    assert tf.make_ndarray(proto).tolist() == [b"ab", b"c"]


def test_request_tensors_decode_as_make_ndarray_decodes_them():
    from serving.grpc_api import _to_array

    rng = np.random.default_rng(0)
    dtypes = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8"]
    dtypes += ["uint16", "uint32", "uint64", "bool"]
    for name in dtypes:
        for shape in [(), (0,), (3,), (2, 0, 4), (1, 24, 24, 3), (5, 1)]:
            array = (rng.normal(size=shape) * 100).astype(name)
            proto = tf.make_tensor_proto(array)
            got, expected = _to_array("x", proto), tf.make_ndarray(proto)
            assert got.dtype == expected.dtype and got.shape == expected.shape, (name, shape)
            np.testing.assert_array_equal(got, expected)
    # repeated-field tensors holding every value, strings: make_ndarray's
    for proto in [
        tensor_pb2.TensorProto(
            dtype=tf.int32.as_datatype_enum, int_val=[7, 8], tensor_shape={"dim": [{"size": 2}]}
        ),
        tf.make_tensor_proto([b"a", b"bc"]),
    ]:
        np.testing.assert_array_equal(_to_array("x", proto), tf.make_ndarray(proto))
    # content of the wrong length is refused before make_ndarray sees it
    bad = tf.make_tensor_proto(np.zeros((2, 3), np.float32))
    bad.tensor_content = bad.tensor_content[:-4]
    with pytest.raises(RequestError, match="holds 20 bytes"):
        _to_array("x", bad)


def malformed(dtype=tf.uint8, shape=(1, 16, 16, 3), **values):
    proto = tensor_pb2.TensorProto(dtype=tf.as_dtype(dtype).as_datatype_enum, **values)
    for size in shape:
        proto.tensor_shape.dim.add(size=size)
    return proto


MALFORMED = [  # (input tensor, message): each INVALID_ARGUMENT, nothing expanded or run
    (malformed(shape=(3000000, 16, 16, 4), int_val=[7]), "holds 1 values in int_val"),
    (malformed(shape=(100000, 16, 16, 3), int_val=[7]), "has 76800000 elements"),
    (malformed(shape=(2, 16, 16, 3)), "holds 0 values"),
    (malformed(shape=(1, 16, 16, 3), int_val=[300] * 768), r"out of range for dtype uint8"),
    (malformed(shape=(1, 16, 16, 3), int_val=[-1] * 768), r"out of range for dtype uint8"),
    (malformed(shape=(10**9, 10**9), int_val=[1]), "holds 1 values"),
    (malformed(shape=(-1, 16, 16, 3), tensor_content=bytes(768)), "invalid tensor shape"),
    (malformed(shape=(2, 16, 16, 3), tensor_content=bytes(768)), "holds 768 bytes"),
    (tensor_pb2.TensorProto(dtype=tf.variant.as_datatype_enum), "DT_VARIANT is not accepted"),
    (tensor_pb2.TensorProto(dtype=tf.resource.as_datatype_enum), "DT_RESOURCE is not accepted"),
]


@pytest.mark.parametrize(
    "tensor, match", MALFORMED, ids=[f"malformed{i}" for i in range(len(MALFORMED))]
)
def test_malformed_tensors_are_invalid_argument_before_expansion(server, tensor, match):
    import re

    prediction, _ = stubs(server)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    request.inputs["images"].CopyFrom(tensor)
    before, start = server.peak_memory_mb(), time.time()
    with pytest.raises(grpc.RpcError) as error:
        prediction.Predict(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
    assert re.search(match, error.value.details()), error.value.details()
    assert time.time() - start < 1.0 and server.peak_memory_mb() - before < 50


def test_client_input_is_quoted_at_most_200_characters(server):
    prediction, _ = stubs(server)
    with pytest.raises(grpc.RpcError) as error:
        prediction.Predict(predict_request(images(1), name="m" * 150_000), timeout=30)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert len(error.value.details()) < 300
    code, reply = call(f"{server.url}/v1/models/{'m' * 10000}:predict", {"instances": [1]})
    assert code == 404 and len(reply["error"]) < 300
