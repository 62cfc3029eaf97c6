"""JSON <-> tensors: TF Serving's REST request and reply formats over a signature.

`predict_inputs` turns a `:predict` body (row "instances" or columnar "inputs") into
numpy arrays of the signature's dtypes; `predict_reply` renders the outputs as
"predictions" or "outputs". Long integer arrays skip Python lists both ways
(`serving.fastjson`, orjson's numpy support). Extension: `{"b64": ...}` values sent to a
uint8 image input are decoded as PNG/JPEG/BMP/GIF images (`serving.images`).
"""

import base64
import binascii
import functools

import numpy as np
import orjson
import tensorflow as tf

from serving import fastjson
from serving.budget import BYTES_PER_PIXEL
from serving.errors import RequestError, invalid_argument
from serving.errors import quote as _quote
from serving.images import EncodedImage, check_image

CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"


def parse_json(raw):
    try:
        return fastjson.loads(raw)
    except (orjson.JSONDecodeError, RecursionError) as error:
        raise invalid_argument(f"JSON Parse error: {error}") from None


def dumps(payload):
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)


class _Images:
    """The `{"b64": ...}` values of a request: every image of an input is checked
    (count, size, the request's pixel budget) before any of them is decoded."""

    def __init__(self, limits, reservation=None):
        self.limits = limits
        self.reservation = reservation
        self.count = 0
        self.pixels = 0

    def check(self, value, spec, input_name):
        try:
            raw = base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise invalid_argument(f"input '{input_name}': invalid base64 value") from None
        if spec.dtype == tf.string:
            return raw
        if spec.dtype != tf.uint8:
            raise invalid_argument(
                f"input '{input_name}': b64 values need a string or uint8 image input"
            )
        self.count += 1
        if self.count > self.limits.max_images:
            raise invalid_argument(
                f"request holds more than {self.limits.max_images} encoded images"
            )
        image = check_image(
            raw, spec, input_name, self.limits.max_pixels, self.limits.max_decode_pixels
        )
        self.pixels += image.pixels
        if self.pixels > self.limits.max_request_pixels:
            raise invalid_argument(
                f"input '{input_name}': the request's images decode to more than "
                f"{self.limits.max_request_pixels} pixels (--max_request_image_pixels)"
            )
        if self.reservation is not None:
            self.reservation.take(image.pixels * BYTES_PER_PIXEL, "decoding its images")
        return image

    def _checked(self, value, spec, input_name):
        if isinstance(value, dict):
            if set(value) == {"b64"}:
                return self.check(value, spec, input_name)
            keys = _quote(sorted(value))
            raise invalid_argument(f"input '{input_name}': unexpected object {keys}")
        if isinstance(value, list):
            return [self._checked(v, spec, input_name) for v in value]
        return value

    def _decoded(self, value):
        if isinstance(value, EncodedImage):
            return value.decode()
        if isinstance(value, list):
            return [self._decoded(v) for v in value]
        return value

    def resolve(self, value, spec, input_name):
        """`value` with its b64 images decoded, once all of them passed the checks."""
        return self._decoded(self._checked(value, spec, input_name))


@functools.cache
def _integer_range(numpy_dtype):
    """`(min, max)` of an integer dtype (TensorFlow's DType.min/max cost ~0.1 ms a call)."""
    info = np.iinfo(numpy_dtype)
    return int(info.min), int(info.max)


def _exact_integers(value, shape, input_name, dtype):
    """The integers of JSON `value` as Python ints (an object array of `shape`): a list
    mixing integers beyond float64's 53 bits with floats or with integers beyond int64
    becomes float64 in numpy, where both the values and the range check round. A float
    beyond 2**53 here is a number the JSON parser could not hold exactly (an integer
    literal beyond 64 bits, such as -9223372036854775809, arrives as one): refused."""
    objects = np.array(value, dtype=object)
    if objects.shape != shape:
        raise invalid_argument(f"input '{input_name}': values must be a rectangular array")
    flat = objects.ravel().tolist()
    if any(isinstance(v, float) and abs(v) >= 2**53 for v in flat):
        low, high = _integer_range(dtype.as_numpy_dtype)
        raise invalid_argument(
            f"input '{input_name}': values out of range for dtype {dtype.name} [{low}, {high}] "
            "or not exact (integers beyond 2**53 must be written without a fraction or "
            "exponent)"
        )
    flat = [int(v) for v in flat]  # every float here is integral (checked)
    return np.array(flat, dtype=object).reshape(shape)


def _has_bools_or_fractions(value, array, dtype):
    """Whether integer input `value` holds JSON booleans (numpy reads `[0, true]` as
    integers), or, for uint8, numbers written as floats (`255.0`, `1e2`)."""
    if array.dtype.kind == "b" or dtype == tf.uint8 and array.dtype.kind == "f":
        return True
    if isinstance(value, list) and array.dtype.kind in "iu":
        text = orjson.dumps(value)
        return b"true" in text or b"false" in text
    return False


def to_tensor(value, spec, input_name, images):
    """Converts a JSON value to a numpy array of `spec`'s dtype (shape is checked later)."""
    dtype = tf.as_dtype(spec.dtype)
    try:
        array = value if isinstance(value, np.ndarray) else np.asarray(value)
        plain = value  # the JSON numbers themselves (None once images were decoded)
        if array.dtype == object or (array.dtype.kind in "US" and dtype != tf.string):
            array = np.asarray(images.resolve(value, spec, input_name))
            plain = None
        if dtype == tf.string:
            if array.dtype.kind not in "OSU":
                raise ValueError("not strings")
            return np.asarray(array, dtype=object)
        if array.dtype == object or array.dtype.kind in "US":
            raise ValueError("ragged or non-numeric")
    except (ValueError, TypeError, RecursionError):
        raise invalid_argument(
            f"input '{input_name}': values must be a rectangular array of {dtype.name} "
            "(rows of different lengths or non-numbers received)"
        ) from None
    if dtype.is_integer and _has_bools_or_fractions(plain, array, dtype):
        raise invalid_argument(
            f"input '{input_name}': expected dtype {dtype.name}, received true/false or "
            "numbers with a fraction or exponent (integers only)"
        )
    if dtype.is_integer or dtype == tf.bool:
        if array.dtype.kind == "f" and not np.all(np.isfinite(array) & (array == np.round(array))):
            raise invalid_argument(
                f"input '{input_name}': expected dtype {dtype.name}, received non-integer values"
            )
        if dtype.is_integer and array.dtype.kind == "f" and array.size:
            if np.abs(array).max() >= 2**53:  # integers float64 may have rounded: redo exactly
                array = _exact_integers(value, array.shape, input_name, dtype)
        if dtype.is_integer and array.size:
            low, high = _integer_range(dtype.as_numpy_dtype)
            if array.min() < low or array.max() > high:
                raise invalid_argument(
                    f"input '{input_name}': values out of range for dtype {dtype.name} "
                    f"[{low}, {high}]"
                )
    elif array.dtype.kind not in "biuf":
        raise invalid_argument(f"input '{input_name}': expected dtype {dtype.name}")
    return array.astype(dtype.as_numpy_dtype, copy=False)


def _signature_name(body):
    name = body.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid_argument("'signature_name' key must be a string value")
    return name


def _body_object(body):
    if not isinstance(body, dict):
        raise invalid_argument("JSON Value is not an object: the request body must be an object")
    return body


def predict_inputs(body, servable, limits, reservation=None):
    """Returns `(signature name, {input name: numpy array}, row format?)` of a body;
    `reservation` (a `serving.budget.Reservation`) takes the decoded images' share."""
    body = _body_object(body)
    has_rows, has_columns = "instances" in body, "inputs" in body
    if has_rows and has_columns:
        raise invalid_argument("Request cannot have both 'instances' and 'inputs' keys; use one")
    if not has_rows and not has_columns:
        raise invalid_argument("Missing 'inputs' or 'instances' key")
    signature_name = _signature_name(body)
    signature = servable.signature(signature_name)
    specs, names = signature.specs, signature.input_names
    if has_rows:
        instances = body["instances"]
        if not isinstance(instances, (list, np.ndarray)) or len(instances) == 0:
            raise invalid_argument("'instances' must be a non-empty list")
        if (
            isinstance(instances, list)
            and isinstance(instances[0], dict)
            and set(instances[0]) != {"b64"}
        ):
            columns = {name: [] for name in instances[0]}
            for instance in instances:
                if not isinstance(instance, dict) or set(instance) != set(columns):
                    raise invalid_argument(
                        "Expecting object but got list at item 0 of input list; every instance "
                        f"must be an object with the same keys {sorted(columns)}"
                    )
                for name, value in instance.items():
                    columns[name].append(value)
        elif len(names) == 1:
            columns = {names[0]: instances}
        else:
            raise invalid_argument(f"each instance must be an object with inputs {names}")
    else:
        inputs = body["inputs"]
        if isinstance(inputs, dict) and set(inputs) != {"b64"}:
            columns = inputs
        elif len(names) == 1:
            columns = {names[0]: inputs}
        else:
            raise invalid_argument(f"'inputs' must be an object with inputs {names}")
    images = _Images(limits, reservation)
    tensors = {}
    for name, value in columns.items():
        if name in specs:
            tensors[name] = to_tensor(value, specs[name], name, images)
        else:  # reported with every other mismatch by the signature's check
            tensors[name] = np.zeros(0)
    return signature_name, tensors, has_rows


def _json_ready(name, array):
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind == "S":
        if name.endswith("_bytes"):
            convert = lambda b: {"b64": base64.b64encode(b).decode()}  # noqa: E731
        else:
            convert = lambda b: b.decode("utf-8", "backslashreplace") if isinstance(b, bytes) else b  # noqa: E731
        return np.vectorize(convert, otypes=[object])(array).tolist()
    if array.dtype.kind == "f" and array.dtype.itemsize == 2 or array.dtype.kind == "V":
        array = array.astype(np.float32)
    if array.dtype.kind == "c":
        raise RequestError("UNIMPLEMENTED", f"output '{name}': complex values have no JSON form")
    return np.ascontiguousarray(array) if array.ndim else array.item()


def predict_reply(outputs, rows):
    """The reply body (bytes) for `outputs` in row or columnar format."""
    if not rows:
        if len(outputs) == 1:
            ((name, value),) = outputs.items()
            return dumps({"outputs": _json_ready(name, value)})
        return dumps({"outputs": {k: _json_ready(k, v) for k, v in outputs.items()}})
    sizes = {k: (v.shape[0] if np.ndim(v) else None) for k, v in outputs.items()}
    batch = next(iter(sizes.values()))
    if batch is None or any(s != batch for s in sizes.values()):
        raise invalid_argument(
            f"outputs {sizes} do not share a batch size: ask for the columnar format ('inputs')"
        )
    if len(outputs) == 1:
        ((name, value),) = outputs.items()
        return dumps({"predictions": _json_ready(name, value)})
    ready = {k: _json_ready(k, v) for k, v in outputs.items()}
    return dumps({"predictions": [{k: v[i] for k, v in ready.items()} for i in range(batch)]})


def check_classify_regress(body, servable, verb):
    """Answers `:classify`/`:regress` as TF Serving does for the signature named."""
    body = _body_object(body)
    if "examples" not in body:
        raise invalid_argument("Missing 'examples' key")
    signature = servable.signature(_signature_name(body))
    kind, method = ("classification", CLASSIFY) if verb == "classify" else ("regression", REGRESS)
    if signature.method_name != method:
        raise invalid_argument(
            f"Expected {kind} signature method_name to be {method}. Was: {signature.method_name}"
        )
    raise RequestError(
        "UNIMPLEMENTED", f"{kind} signatures (tf.Example inputs) are not served by this server"
    )


STRUCTURE_CHECK_BYTES = 1 << 20  # smaller bodies parse in well under 0.1 s anyway
_WHITESPACE = b" \t\r\n"


def _arrays_per_value(spec):
    """The most JSON arrays per value a valid `spec` input can hold in its rows (None
    where unbounded: unknown rank, strings, a zero dimension)."""
    if spec.dtype == tf.string or spec.shape.rank is None:
        return None
    inner = [1 if d is None else d for d in spec.shape.as_list()[1:]]
    if 0 in inner:
        return None
    arrays = sum(int(np.prod(inner[:k])) for k in range(len(inner)))
    return arrays / int(np.prod(inner))


def check_structure(raw, servable):
    """Refuses, before parsing, a large body holding more JSON arrays than any signature
    of `servable` allows for its size (parsing 57 MB of `[], [], ...` took 12 s).

    A valid request's arrays are its values' rows: with `q` arrays per value at most,
    `A` arrays and `V` values take at least `2A + 2V - 1` bytes and `A <= qV` (plus the
    outer lists), so `A <= bytes / (2 + 2/q)`; and no array is empty but a batch of none.
    Signatures with string inputs or unknown ranks are not bounded."""
    if len(raw) < STRUCTURE_CHECK_BYTES:
        return
    specs = [spec for s in servable.signatures.values() for spec in s.specs.values()]
    ratios = [_arrays_per_value(spec) for spec in specs]
    if not ratios or None in ratios:
        return
    slack = 16 + 2 * len(specs)
    q = max(ratios)
    most = int(len(raw) / (2 + 2 / q)) + slack if q else slack
    arrays = raw.count(b"[")
    if arrays > most:
        raise invalid_argument(
            f"request of {len(raw)} bytes holds {arrays} JSON arrays; the signatures' inputs "
            f"allow at most {most} in a body of that size"
        )
    empty = raw.translate(None, _WHITESPACE).count(b"[]")
    if empty > slack:
        raise invalid_argument(
            f"request holds {empty} empty JSON arrays; the signatures' inputs have no empty rows"
        )
