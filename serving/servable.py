"""One loaded SavedModel version: its signatures, warm-up and the predict call.

Both APIs (REST and gRPC) and the warm-up replay end in `Servable.run`, which takes and
returns numpy arrays keyed by the signature's input and output names, checks them as TF
Serving does, and hands the call to the batcher when batching is on.
"""

import os
import threading

import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import error_codes_pb2

from serving.errors import RequestError, invalid_argument, quote
from serving.metadata import read_signature_defs

DEFAULT_SIGNATURE = "serving_default"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000  # TF Serving's WarmupConsts::kMaxNumRecords


def _type_name(dtype):
    """TensorFlow's DataTypeString: "float", "uint8", "string"."""
    return types_pb2.DataType.Name(tf.as_dtype(dtype).as_datatype_enum)[3:].lower()


def _set(names):
    return quote("{" + ",".join(sorted(names)) + "}")


class Signature:
    """A signature of a loaded version: its function, input specs and output names."""

    def __init__(self, name, function, signature_def):
        self.name = name
        self.function = function
        self.specs = dict(function.structured_input_signature[1])
        self.input_names = sorted(self.specs)
        # (dims or None per input): checked per request without building TensorShapes
        self.shapes = {
            name: None if spec.shape.rank is None else tuple(spec.shape.as_list())
            for name, spec in self.specs.items()
        }
        self.numpy_dtypes = {name: spec.dtype.as_numpy_dtype for name, spec in self.specs.items()}
        self.output_names = sorted(signature_def.outputs)
        self.method_name = signature_def.method_name

    def check_inputs(self, inputs):
        """Checks input names, dtypes and shapes of numpy `inputs`, as TF Serving does."""
        sent, needed = set(inputs), set(self.specs)
        if sent != needed:
            raise invalid_argument(
                f"input size does not match signature: {len(sent)}!={len(needed)} "
                f"len({_set(sent)}) != len({_set(needed)}). Sent extra: {_set(sent - needed)}. "
                f"Missing but required: {_set(needed - sent)}."
            )
        for index, name in enumerate(self.input_names):
            spec, array = self.specs[name], inputs[name]
            if array.dtype != self.numpy_dtypes[name] and not (
                spec.dtype == tf.string and array.dtype.kind in "OSU"
            ):
                received = _type_name(array.dtype) if array.dtype.kind != "O" else "object"
                raise invalid_argument(
                    f"Expects arg[{index}] ('{name}') to be {_type_name(spec.dtype)} but "
                    f"{received} is provided"
                )
            dims = self.shapes[name]
            if dims is not None and (
                len(dims) != array.ndim
                or any(d is not None and d != n for d, n in zip(dims, array.shape))
            ):
                expected = [-1 if d is None else d for d in spec.shape.as_list()]
                raise invalid_argument(
                    f"input '{name}': expected shape {expected}, received shape {list(array.shape)}"
                )

    def __call__(self, inputs):
        """Runs the function on numpy `inputs`; returns `{output name: numpy array}`."""
        try:
            outputs = self.function(**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.OpError as error:
            code = error_codes_pb2.Code.Name(error.error_code)
            raise RequestError(code, error.message) from None
        except (ValueError, TypeError) as error:
            raise invalid_argument(f"model rejected the input: {error}") from None
        return {k: v.numpy() for k, v in outputs.items()}


class Servable:
    """A SavedModel version loaded for serving.

    Args:
        version: int. The version number.
        path: str. The version directory.
        batcher: `serving.batching.Batcher` or `None`. Merges concurrent requests.
            Defaults to `None`.
        warmup: bool. Replays `assets.extra/tf_serving_warmup_requests` after loading.
            Defaults to `True`.
    """

    def __init__(self, version, path, batcher=None, warmup=True):
        self.version = version
        self.path = path
        self.batcher = batcher
        self.signature_defs = read_signature_defs(path)
        self.module = tf.saved_model.load(path, tags=["serve"])
        self.signatures = {
            name: Signature(name, function, self.signature_defs.signature_def[name])
            for name, function in self.module.signatures.items()
        }
        self.inflight = 0
        self.idle = threading.Condition()
        self.warmup_records = self.warm_up() if warmup else 0

    def signature(self, name):
        name = name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise RequestError(
                "FAILED_PRECONDITION",
                f'Serving signature name: "{quote(name)}" not found in signature def',
            )
        return self.signatures[name]

    def run(self, signature_name, inputs, output_filter=(), batched=True):
        """Predicts: returns `(Signature, {output name: numpy array})`."""
        signature = self.signature(signature_name)
        signature.check_inputs(inputs)
        unknown = set(output_filter) - set(signature.output_names)
        if unknown:
            raise invalid_argument(
                f"output tensor alias not found in signature: {_set(unknown)} Outputs expected "
                f"to be in the set {_set(signature.output_names)}."
            )
        if batched and self.batcher is not None:
            outputs = self.batcher.run(self, signature, inputs)
        else:
            outputs = signature(inputs)
        if output_filter:
            outputs = {k: outputs[k] for k in output_filter}
        return signature, outputs

    def warm_up(self):
        """Replays the version's warm-up `PredictionLog` records; returns how many."""
        path = os.path.join(self.path, WARMUP_FILE)
        if not os.path.exists(path):
            return 0
        from tensorflow_serving.apis import prediction_log_pb2

        count = 0
        try:
            for record in tf.data.TFRecordDataset(path):
                count += 1
                if count > MAX_WARMUP_RECORDS:
                    raise ValueError(
                        f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS})"
                    )
                log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
                kind = log.WhichOneof("log_type")
                if kind != "predict_log":
                    raise ValueError(f"Unsupported log_type for warmup: {kind}")
                request = log.predict_log.request
                inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
                self.run(request.model_spec.signature_name, inputs, request.output_filter, False)
        except RequestError as error:
            raise RuntimeError(
                f"warm-up request {count} of {path} failed: {error.message}"
            ) from None
        except (tf.errors.OpError, ValueError, TypeError) as error:
            message = getattr(error, "message", None) or str(error)
            raise RuntimeError(f"warm-up record {count} of {path} is invalid: {message}") from None
        return count
