"""The gRPC API: TF Serving's `PredictionService` and `ModelService` services.

Implemented with the stubs of `tensorflow-serving-api`, so a stock TF Serving gRPC client
works unchanged: `Predict`, `GetModelMetadata` (field "signature_def") and
`GetModelStatus`; `Classify` and `Regress` answer as for predict-only signatures. Errors
carry TF Serving's canonical codes (NOT_FOUND, INVALID_ARGUMENT, ...).
"""

import math
from concurrent import futures

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.errors import RequestError, invalid_argument, not_found
from serving.metadata import SIGNATURE_DEF, metadata_response, status_response

# numpy dtypes whose bytes are the TensorProto's `tensor_content` as they are (what
# `tf.make_tensor_proto` writes for them, at a quarter of its cost per output)
_RAW_CONTENT = {
    np.dtype(name): tf.as_dtype(name).as_datatype_enum
    for name in ("float16", "float32", "float64", "int8", "int16", "int32", "int64")
    + ("uint8", "uint16", "uint32", "uint64")
}


_NUMPY_DTYPE = {enum: dtype for dtype, enum in _RAW_CONTENT.items()}


def _to_array(proto):
    """`tf.make_ndarray(proto)`, read-only and without its copy where the tensor is
    numeric `tensor_content` of the right length (what stock clients send); anything
    else, and its errors, are `tf.make_ndarray`'s."""
    dtype = _NUMPY_DTYPE.get(proto.dtype)
    content = proto.tensor_content
    if dtype is not None and content and not proto.tensor_shape.unknown_rank:
        shape = [d.size for d in proto.tensor_shape.dim]
        if min(shape, default=0) >= 0 and math.prod(shape) * dtype.itemsize == len(content):
            return np.frombuffer(content, dtype).reshape(shape)
    return tf.make_ndarray(proto)


def _fill_tensor(proto, array):
    """Writes numpy `array` into the (empty) TensorProto `proto`."""
    enum = _RAW_CONTENT.get(array.dtype)
    if enum is None:
        if array.dtype == object:
            made = tf.make_tensor_proto(array.tolist(), dtype=tf.string, shape=array.shape)
        else:
            made = tf.make_tensor_proto(array)
        proto.CopyFrom(made)
        return
    proto.dtype = enum
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    proto.tensor_content = array.tobytes()  # C order, native (little-endian) bytes


class _Handler:
    def __init__(self, models):
        self.models = models

    def _model_version(self, spec):
        model = self.models.get(spec.name)
        label = spec.version_label if spec.WhichOneof("version_choice") == "version_label" else None
        version = spec.version.value if spec.HasField("version") else None
        if not spec.name:
            raise invalid_argument("Missing model name in request.")
        if model is None:
            if label:
                raise invalid_argument(f"Unrecognized servable version label: {label}")
            what = (
                f"Latest({spec.name})" if version is None else f"Specific({spec.name}, {version})"
            )
            raise not_found(f"Servable not found for request: {what}")
        return model, model.resolve(version, label)

    def call(self, context, function):
        try:
            return function()
        except RequestError as error:
            context.abort(grpc.StatusCode[error.code], error.message)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer, _Handler):
    def Predict(self, request, context):
        return self.call(context, lambda: self._predict(request))

    def _predict(self, request):
        model, version = self._model_version(request.model_spec)
        servable = model.acquire(version)
        try:
            try:
                inputs = {k: _to_array(v) for k, v in request.inputs.items()}
            except (TypeError, ValueError) as error:
                raise invalid_argument(f"input tensor could not be converted: {error}") from None
            signature, outputs = servable.run(
                request.model_spec.signature_name, inputs, tuple(request.output_filter)
            )
            response = predict_pb2.PredictResponse()
            response.model_spec.name = model.name
            response.model_spec.version.value = servable.version
            response.model_spec.signature_name = signature.name
            for name, value in outputs.items():
                _fill_tensor(response.outputs[name], value)
            return response
        finally:
            model.release(servable)

    def GetModelMetadata(self, request, context):
        return self.call(context, lambda: self._metadata(request))

    def _metadata(self, request):
        if not request.metadata_field:
            raise invalid_argument(
                "GetModelMetadataRequest must specify at least one metadata_field"
            )
        for field in request.metadata_field:
            if field != SIGNATURE_DEF:
                raise invalid_argument(f"Metadata field {field} is not supported")
        model, version = self._model_version(request.model_spec)
        servable = model.acquire(version)
        try:
            return metadata_response(model.name, servable.version, servable.signature_defs)
        finally:
            model.release(servable)

    def Classify(self, request, context):
        return self.call(context, lambda: self._unsupported(request, "classification"))

    def Regress(self, request, context):
        return self.call(context, lambda: self._unsupported(request, "regression"))

    def _unsupported(self, request, kind):
        model, version = self._model_version(request.model_spec)
        servable = model.acquire(version)
        try:
            signature = servable.signature(request.model_spec.signature_name)
        finally:
            model.release(servable)
        method = f"tensorflow/serving/{'classify' if kind == 'classification' else 'regress'}"
        if signature.method_name != method:
            raise invalid_argument(
                f"Expected {kind} signature method_name to be {method}. Was: {signature.method_name}"
            )
        raise RequestError("UNIMPLEMENTED", f"{kind} signatures are not served by this server")


class ModelService(model_service_pb2_grpc.ModelServiceServicer, _Handler):
    def GetModelStatus(self, request, context):
        return self.call(context, lambda: self._status(request))

    def _status(self, request):
        spec = request.model_spec
        if not spec.name:
            raise invalid_argument("Missing model name in request.")
        model = self.models.get(spec.name)
        if model is None:
            raise not_found(f"Could not find any versions of model {spec.name}")
        label = spec.version_label if spec.WhichOneof("version_choice") == "version_label" else None
        version = model.resolve(spec.version.value if spec.HasField("version") else None, label)
        return status_response(model.name, model.status(version))


def grpc_server(address, models, num_threads, max_message_bytes):
    """A started-on-`start()` gRPC server for `models` on `address` ("host:port")."""
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", -1),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(futures.ThreadPoolExecutor(num_threads), options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(models), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(models), server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind the gRPC API to {address}")
    return server, port
