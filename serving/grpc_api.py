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
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.budget import DECODE_FACTOR, Reservation
from serving.errors import RequestError, invalid_argument, not_found, quote
from serving.metadata import SIGNATURE_DEF, metadata_response, status_response

# numpy dtypes whose bytes are the TensorProto's `tensor_content` as they are (what
# `tf.make_tensor_proto` writes for them, at a quarter of its cost per output)
_RAW_CONTENT = {
    np.dtype(name): tf.as_dtype(name).as_datatype_enum
    for name in ("float16", "float32", "float64", "int8", "int16", "int32", "int64")
    + ("uint8", "uint16", "uint32", "uint64")
}


_NUMPY_DTYPE = {enum: dtype for dtype, enum in _RAW_CONTENT.items()}


# dtype enum -> the TensorProto field holding its values one by one
_VALUE_FIELD = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_BFLOAT16: "half_val",
    types_pb2.DT_COMPLEX64: "scomplex_val",
    types_pb2.DT_COMPLEX128: "dcomplex_val",
}


def _to_array(name, proto):
    """The numpy array of the TensorProto `proto` sent as input `name`.

    Its size is checked against its content before anything is expanded, as TF
    Serving's tensor parsing does: `tensor_content` must hold exactly the declared
    elements, and so must the typed value field (`int_val`, ...): one value for a shape
    of many elements, or none, is refused rather than filled out. Integer values are
    checked against the dtype's range as integers. Errors are INVALID_ARGUMENT."""
    field = _VALUE_FIELD.get(proto.dtype)
    if field is None:
        kind = (
            types_pb2.DataType.Name(proto.dtype)
            if proto.dtype in types_pb2.DataType.values()
            else proto.dtype
        )
        raise invalid_argument(f"input '{quote(name)}': tensor dtype {kind} is not accepted")
    if proto.tensor_shape.unknown_rank:
        raise invalid_argument(f"input '{quote(name)}': tensor shape has an unknown rank")
    shape = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in shape) or len(shape) > 254:
        raise invalid_argument(f"input '{quote(name)}': invalid tensor shape {quote(shape)}")
    count = math.prod(shape)
    dtype = _NUMPY_DTYPE.get(proto.dtype)
    content = proto.tensor_content
    if content:
        if dtype is None:
            raise invalid_argument(
                f"input '{quote(name)}': tensor_content is not accepted for dtype "
                f"{types_pb2.DataType.Name(proto.dtype)}"
            )
        if count * dtype.itemsize != len(content):
            raise invalid_argument(
                f"input '{quote(name)}': tensor_content holds {len(content)} bytes, its shape "
                f"{quote(shape)} of {dtype.name} needs {count * dtype.itemsize}"
            )
        return np.frombuffer(content, dtype).reshape(shape)
    values = getattr(proto, field)
    sent = len(values) // 2 if field.endswith("complex_val") else len(values)
    if sent != count:
        raise invalid_argument(
            f"input '{quote(name)}': tensor holds {sent} values in {field}, its shape "
            f"{quote(shape)} has {count} elements"
        )
    if field == "int_val" and dtype.itemsize < 4 and values:
        info, array = np.iinfo(dtype), np.asarray(values, np.int64)
        if array.min() < info.min or array.max() > info.max:
            raise invalid_argument(
                f"input '{quote(name)}': values out of range for dtype {dtype.name} "
                f"[{info.min}, {info.max}]"
            )
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
    def __init__(self, models, budget=None):
        self.models = models
        self.budget = budget

    def _model_version(self, spec):
        model = self.models.get(spec.name)
        label = spec.version_label if spec.WhichOneof("version_choice") == "version_label" else None
        version = spec.version.value if spec.HasField("version") else None
        if not spec.name:
            raise invalid_argument("Missing model name in request.")
        if model is None:
            if label:
                raise invalid_argument(f"Unrecognized servable version label: {quote(label)}")
            name = quote(spec.name)
            what = f"Latest({name})" if version is None else f"Specific({name}, {version})"
            raise not_found(f"Servable not found for request: {what}")
        return model, model.resolve(version, label)

    def call(self, context, function):
        try:
            return function()
        except RequestError as error:
            context.abort(grpc.StatusCode[error.code], error.message)
        except MemoryError:  # load, not a model failure
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "server busy: out of memory decoding or running the request; retry later",
            )


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer, _Handler):
    def Predict(self, request, context):
        return self.call(context, lambda: self._predict(request))

    def _predict(self, request):
        model, version = self._model_version(request.model_spec)
        servable = model.acquire(version)
        try:
            with Reservation(self.budget) as reservation:
                reservation.take(DECODE_FACTOR * request.ByteSize(), "decoding the request")
                return self._run(model, servable, request)
        finally:
            model.release(servable)

    def _run(self, model, servable, request):
        signature = servable.signature(request.model_spec.signature_name)
        _check_dtypes(signature, request.inputs)
        try:
            inputs = {k: _to_array(k, v) for k, v in request.inputs.items()}
        except (TypeError, ValueError, OverflowError) as error:
            message = quote(error)
            raise invalid_argument(f"input tensor could not be converted: {message}") from None
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

    def GetModelMetadata(self, request, context):
        return self.call(context, lambda: self._metadata(request))

    def _metadata(self, request):
        if not request.metadata_field:
            raise invalid_argument(
                "GetModelMetadataRequest must specify at least one metadata_field"
            )
        for field in request.metadata_field:
            if field != SIGNATURE_DEF:
                raise invalid_argument(f"Metadata field {quote(field)} is not supported")
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
            raise not_found(f"Could not find any versions of model {quote(spec.name)}")
        label = spec.version_label if spec.WhichOneof("version_choice") == "version_label" else None
        version = model.resolve(spec.version.value if spec.HasField("version") else None, label)
        return status_response(model.name, model.status(version))


def _check_dtypes(signature, protos):
    """Refuses an input whose TensorProto dtype is not the signature's before it is
    expanded (string tensors grew 25-39x in memory before the mismatch was found)."""
    for index, name in enumerate(signature.input_names):
        proto = protos.get(name)
        expected = signature.specs[name].dtype.as_datatype_enum
        if proto is not None and proto.dtype != expected and proto.dtype in _VALUE_FIELD:
            sent = types_pb2.DataType.Name(proto.dtype)[3:].lower()
            wanted = types_pb2.DataType.Name(expected)[3:].lower()
            raise invalid_argument(
                f"Expects arg[{index}] ('{name}') to be {wanted} but {sent} is provided"
            )


def grpc_server(address, models, num_threads, max_message_bytes, budget=None):
    """A started-on-`start()` gRPC server for `models` on `address` ("host:port")."""
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", -1),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(futures.ThreadPoolExecutor(num_threads), options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(models, budget), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(models), server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind the gRPC API to {address}")
    return server, port
