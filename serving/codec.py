"""JSON <-> tensors: TF Serving's REST request and reply formats over a signature."""

import base64
import binascii
from http import HTTPStatus

import numpy as np
import tensorflow as tf

from serving.errors import RequestError


def _dtype_name(dtype):
    return "DT_" + tf.as_dtype(dtype).name.upper().replace("FLOAT", "FLOAT").replace("BOOL", "BOOL")


def _tensor_info(spec, tensor_name):
    shape = spec.shape
    if shape.rank is None:
        shape_json = {"dim": [], "unknown_rank": True}
    else:
        shape_json = {
            "dim": [{"size": str(-1 if d is None else d), "name": ""} for d in shape.as_list()],
            "unknown_rank": False,
        }
    return {"dtype": _dtype_name(spec.dtype), "tensor_shape": shape_json, "name": tensor_name}


def signature_def(function):
    inputs = function.structured_input_signature[1]
    outputs = function.structured_outputs
    return {
        "inputs": {k: _tensor_info(s, f"{k}:0") for k, s in sorted(inputs.items())},
        "outputs": {
            k: _tensor_info(tf.TensorSpec(t.shape, t.dtype), f"{k}:0")
            for k, t in sorted(outputs.items())
        },
        "method_name": "tensorflow/serving/predict",
    }


def _decode_b64(value, spec, input_name):
    try:
        raw = base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise RequestError(
            HTTPStatus.BAD_REQUEST, f"input '{input_name}': invalid base64 value"
        ) from None
    if spec.dtype == tf.string:
        return raw
    if spec.dtype == tf.uint8:
        try:
            return tf.io.decode_image(raw, channels=3, expand_animations=False).numpy()
        except (tf.errors.InvalidArgumentError, ValueError):
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                f"input '{input_name}': b64 value is not a PNG/JPEG/BMP/GIF image",
            ) from None
    raise RequestError(
        HTTPStatus.BAD_REQUEST,
        f"input '{input_name}': b64 values need a string or uint8 image input",
    )


def _resolve_b64(value, spec, input_name):
    if isinstance(value, dict):
        if set(value) == {"b64"}:
            return _decode_b64(value, spec, input_name)
        raise RequestError(
            HTTPStatus.BAD_REQUEST, f"input '{input_name}': unexpected object {sorted(value)}"
        )
    if isinstance(value, list):
        return [_resolve_b64(v, spec, input_name) for v in value]
    return value


def to_tensor(value, spec, input_name, batched=True):
    """Converts a JSON value to a numpy array of `spec`'s dtype, checking its shape."""
    value = _resolve_b64(value, spec, input_name)
    dtype = tf.as_dtype(spec.dtype)
    try:
        if dtype == tf.string:
            array = np.array(value, dtype=object)
        else:
            array = np.asarray(value)
            if array.dtype == object or array.dtype.kind in "US":
                raise ValueError("ragged or non-numeric")
    except ValueError:
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            f"input '{input_name}': values must be a rectangular array of {dtype.name} "
            "(rows of different lengths or non-numbers received)",
        ) from None
    if dtype != tf.string:
        if dtype.is_integer or dtype == tf.bool:
            if array.dtype.kind == "f" and not np.all(
                np.isfinite(array) & (array == np.round(array))
            ):
                raise RequestError(
                    HTTPStatus.BAD_REQUEST,
                    f"input '{input_name}': expected dtype {dtype.name}, received non-integer values",
                )
            if (
                dtype.is_integer
                and array.size
                and (array.min() < dtype.min or array.max() > dtype.max)
            ):
                raise RequestError(
                    HTTPStatus.BAD_REQUEST,
                    f"input '{input_name}': values out of range for dtype {dtype.name} "
                    f"[{dtype.min}, {dtype.max}]",
                )
        elif array.dtype.kind not in "biuf":
            raise RequestError(
                HTTPStatus.BAD_REQUEST, f"input '{input_name}': expected dtype {dtype.name}"
            )
        array = array.astype(dtype.as_numpy_dtype)
    if not spec.shape.is_compatible_with(array.shape):
        expected = [-1 if d is None else d for d in spec.shape.as_list()]
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            f"input '{input_name}': expected shape {expected}, received shape {list(array.shape)}",
        )
    return array


def to_json(array):
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind == "S":
        return np.vectorize(lambda b: {"b64": base64.b64encode(b).decode()}, otypes=[object])(
            array
        ).tolist()
    return array.tolist()


def _check_input_names(given, names, what):
    if sorted(given) != names:
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            f"{what} {sorted(given)} do not match the signature inputs {names}",
        )


def predict(loaded, body):
    """Runs a predict request body (a dict) on a loaded version; returns the reply dict."""
    if not isinstance(body, dict):
        raise RequestError(HTTPStatus.BAD_REQUEST, "JSON body must be an object")
    has_rows, has_columns = "instances" in body, "inputs" in body
    if has_rows and has_columns:
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            "Request cannot have both 'instances' and 'inputs' keys; use one",
        )
    if not has_rows and not has_columns:
        raise RequestError(HTTPStatus.BAD_REQUEST, "Missing 'inputs' or 'instances' key")
    _, function = loaded.signature(body.get("signature_name"))
    specs = function.structured_input_signature[1]
    names = sorted(specs)
    if has_rows:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise RequestError(HTTPStatus.BAD_REQUEST, "'instances' must be a non-empty list")
        columns = {name: [] for name in names}
        for instance in instances:
            if isinstance(instance, dict) and set(instance) != {"b64"}:
                _check_input_names(instance, names, "instance inputs")
                for name in names:
                    columns[name].append(instance[name])
            elif len(names) == 1:
                columns[names[0]].append(instance)
            else:
                raise RequestError(
                    HTTPStatus.BAD_REQUEST, f"each instance must be an object with inputs {names}"
                )
    else:
        inputs = body["inputs"]
        if isinstance(inputs, dict) and set(inputs) != {"b64"}:
            _check_input_names(inputs, names, "inputs")
            columns = inputs
        elif len(names) == 1:
            columns = {names[0]: inputs}
        else:
            raise RequestError(
                HTTPStatus.BAD_REQUEST, f"'inputs' must be an object with inputs {names}"
            )
    tensors = {name: to_tensor(columns[name], specs[name], name) for name in names}
    try:
        outputs = function(**{k: tf.constant(v) for k, v in tensors.items()})
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"model rejected the input: {error}") from None
    outputs = {k: v.numpy() for k, v in outputs.items()}
    if has_rows:
        batch = len(next(iter(tensors.values())))
        if len(outputs) == 1:
            (value,) = outputs.values()
            return {"predictions": to_json(value)}
        return {
            "predictions": [{k: to_json(v[i]) for k, v in outputs.items()} for i in range(batch)]
        }
    if len(outputs) == 1:
        (value,) = outputs.values()
        return {"outputs": to_json(value)}
    return {"outputs": {k: to_json(v) for k, v in outputs.items()}}
