"""The gRPC API: predict, metadata and status against REST, its error codes, the tensors it
encodes and decodes, and malformed tensors refused before expansion."""

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
from serving.errors import RequestError
from tests.serving.savedmodels import call, images


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
