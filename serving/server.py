"""A REST server with TF Serving's API over SavedModel base paths.

    python -m serving.server --model_name gapnet --model_base_path runs/channelwise/exports/k3-zero-gapnet-location

Flags mean what they mean for `tensorflow_model_server`; endpoints and JSON follow TF
Serving's REST API reference (`api_rest.md` in tensorflow/serving):

    GET  /v1/models/{name}[/versions/{v}]              model status
    GET  /v1/models/{name}[/versions/{v}]/metadata     signature defs
    POST /v1/models/{name}[/versions/{v}]:predict      row ("instances") or columnar ("inputs")

Version policy (TF Serving's default, "latest"): the highest integer version under the
base path is served; a new version is picked up within the poll interval, and the old
one is unloaded only after its in-flight requests finish. Extensions: `{"b64": ...}`
values sent to a uint8 image input are decoded as PNG/JPEG/BMP/GIF images, and
`--max_request_bytes` answers 413 to larger bodies. This module imports TensorFlow but
not tfposenc: it serves any SavedModel.
"""

import argparse
import base64
import binascii
import json
import os
import re
import signal
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from serving.model_config import parse_model_config  # noqa: E402

DEFAULT_SIGNATURE = "serving_default"
PATH = re.compile(
    r"^/v1/models/([^/:]+)(?:/versions/(\d+))?(?:/(metadata)|:(predict|classify|regress))?$"
)


class RequestError(Exception):
    """An error answered to the client: an HTTP status and TF Serving's message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class LoadedVersion:
    """One loaded SavedModel version, with a count of the requests using it."""

    def __init__(self, version, path):
        self.version = version
        self.path = path
        self.module = tf.saved_model.load(path)
        self.signatures = dict(self.module.signatures)
        self.state = "AVAILABLE"
        self.inflight = 0
        self.idle = threading.Condition()

    def signature(self, name):
        name = name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                f'Serving signature name: "{name}" not found in signature def',
            )
        return name, self.signatures[name]


def _versions_on_disk(base_path):
    try:
        names = os.listdir(base_path)
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(base_path, name)
        if name.isdigit() and os.path.exists(os.path.join(path, "saved_model.pb")):
            found.append(int(name))
    return sorted(found)


class ServedModel:
    """A model name over a base path, serving its latest version."""

    def __init__(self, name, base_path):
        self.name = name
        self.base_path = base_path
        self.lock = threading.Lock()
        self.loaded = {}  # version -> LoadedVersion
        self.ended = {}  # version -> final state, for status
        self.errors = {}

    def poll(self):
        """Loads a newer version if one appeared; unloads older ones once idle."""
        versions = _versions_on_disk(self.base_path)
        if not versions:
            return
        latest = versions[-1]
        with self.lock:
            current = max(self.loaded) if self.loaded else None
        if current is not None and latest <= current:
            return
        try:
            fresh = LoadedVersion(latest, os.path.join(self.base_path, str(latest)))
        except Exception as error:  # a broken version must not take the server down
            self.errors[latest] = str(error)
            print(
                f"failed to load {self.name} version {latest}: {error}", file=sys.stderr, flush=True
            )
            return
        with self.lock:
            old = [v for v in self.loaded.values()]
            self.loaded[latest] = fresh
            for version in old:
                version.state = "UNLOADING"
        print(f"serving {self.name} version {latest}", flush=True)
        for version in old:
            threading.Thread(target=self._unload, args=(version,), daemon=True).start()

    def _unload(self, version):
        with version.idle:
            version.idle.wait_for(lambda: version.inflight == 0)
        with self.lock:
            self.loaded.pop(version.version, None)
            version.state = "END"
            self.ended[version.version] = "END"

    def acquire(self, version=None):
        with self.lock:
            if version is None:
                available = [v for v in self.loaded.values() if v.state == "AVAILABLE"]
                chosen = max(available, key=lambda v: v.version) if available else None
                spec = f"Latest({self.name})"
            else:
                chosen = self.loaded.get(version)
                spec = f"Specific({self.name}, {version})"
            if chosen is None:
                raise RequestError(HTTPStatus.NOT_FOUND, f"Servable not found for request: {spec}")
            with chosen.idle:
                chosen.inflight += 1
            return chosen

    def release(self, loaded):
        with loaded.idle:
            loaded.inflight -= 1
            loaded.idle.notify_all()

    def status(self, version=None):
        with self.lock:
            states = {v: lv.state for v, lv in self.loaded.items()}
            states.update({v: s for v, s in self.ended.items() if v not in states})
        if version is not None:
            if version not in states:
                raise RequestError(
                    HTTPStatus.NOT_FOUND,
                    f"Could not find version {version} of model {self.name}",
                )
            states = {version: states[version]}
        if not states:
            raise RequestError(
                HTTPStatus.NOT_FOUND, f"Could not find any versions of model {self.name}"
            )
        return {
            "model_version_status": [
                {"version": str(v), "state": s, "status": {"error_code": "OK", "error_message": ""}}
                for v, s in sorted(states.items(), reverse=True)
            ]
        }


# === Tensors <-> JSON ===


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


# === HTTP ===


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tfposenc-serving/0.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, a
    # keep-alive client's delayed ACK stalls every reply by ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # quiet by default; errors are in the replies
        if self.server.verbose:
            super().log_message(format, *args)

    def _reply(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self):
        match = PATH.match(self.path.split("?", 1)[0])
        if not match:
            raise RequestError(
                HTTPStatus.NOT_FOUND, f"Malformed request: {self.command} {self.path}"
            )
        name, version, metadata, verb = match.groups()
        model = self.server.models.get(name)
        if model is None:
            raise RequestError(
                HTTPStatus.NOT_FOUND, f"Servable not found for request: Latest({name})"
            )
        return model, (int(version) if version else None), metadata, verb

    def do_GET(self):
        try:
            model, version, metadata, verb = self._route()
            if verb:
                raise RequestError(HTTPStatus.METHOD_NOT_ALLOWED, f":{verb} needs POST")
            if not metadata:
                self._reply(HTTPStatus.OK, model.status(version))
                return
            loaded = model.acquire(version)
            try:
                payload = {
                    "model_spec": {
                        "name": model.name,
                        "signature_name": "",
                        "version": str(loaded.version),
                    },
                    "metadata": {
                        "signature_def": {
                            "signature_def": {
                                k: signature_def(f) for k, f in sorted(loaded.signatures.items())
                            }
                        }
                    },
                }
            finally:
                model.release(loaded)
            self._reply(HTTPStatus.OK, payload)
        except RequestError as error:
            self._reply(error.status, {"error": error.message})

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        try:
            if length < 0:
                raise RequestError(HTTPStatus.BAD_REQUEST, "invalid Content-Length")
            if length > self.server.max_request_bytes:
                self.close_connection = True
                raise RequestError(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    f"request body of {length} bytes exceeds the limit of {self.server.max_request_bytes}",
                )
            raw = self.rfile.read(length)
            model, version, metadata, verb = self._route()
            if verb != "predict":
                raise RequestError(
                    HTTPStatus.NOT_FOUND, f"Malformed request: POST {self.path} (only :predict)"
                )
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise RequestError(HTTPStatus.BAD_REQUEST, f"JSON Parse error: {error}") from None
            loaded = model.acquire(version)
            try:
                reply = predict(loaded, body)
            finally:
                model.release(loaded)
            self._reply(HTTPStatus.OK, reply)
        except RequestError as error:
            self._reply(error.status, {"error": error.message})
        except Exception as error:  # never let one request take the server down
            self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {error}"})


class ModelServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address, models, poll_seconds=2.0, max_request_bytes=64 << 20, verbose=False
    ):
        super().__init__(address, Handler)
        self.models = {m.name: m for m in models}
        self.poll_seconds = poll_seconds
        self.max_request_bytes = max_request_bytes
        self.verbose = verbose
        self._stop = threading.Event()
        for model in self.models.values():
            model.poll()
        self._poller = threading.Thread(target=self._poll_loop, daemon=True)
        self._poller.start()

    def _poll_loop(self):
        while not self._stop.wait(self.poll_seconds):
            for model in self.models.values():
                model.poll()

    def server_close(self):
        self._stop.set()
        super().server_close()


def build_parser():
    parser = argparse.ArgumentParser(description="REST server with TF Serving's API")
    parser.add_argument("--model_name", default=None, help="name of the single model to serve")
    parser.add_argument(
        "--model_base_path", default=None, help="its base path (integer version subdirectories)"
    )
    parser.add_argument(
        "--model_config_file", default=None, help="TF Serving text model_config_list file"
    )
    parser.add_argument("--rest_api_port", type=int, default=8501)
    parser.add_argument(
        "--rest_api_host", default="127.0.0.1", help="bind address (TF Serving: 0.0.0.0)"
    )
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=2.0)
    parser.add_argument(
        "--max_request_bytes", type=int, default=64 << 20, help="413 above this body size"
    )
    parser.add_argument(
        "--port", type=int, default=None, help="gRPC port of TF Serving: accepted, unused"
    )
    parser.add_argument(
        "--rest_api_num_threads", type=int, default=None, help="accepted; one thread per request"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def models_from_args(args, parser):
    if args.model_config_file:
        if args.model_base_path:
            parser.error("use either --model_config_file or --model_base_path, not both")
        with open(args.model_config_file) as f:
            try:
                configs = parse_model_config(f.read())
            except ValueError as error:
                parser.error(str(error))
    else:
        if not args.model_base_path:
            parser.error("--model_base_path (or --model_config_file) is required")
        configs = [{"name": args.model_name or "default", "base_path": args.model_base_path}]
    for config in configs:
        if not os.path.isdir(config["base_path"]):
            parser.error(
                f"base path of model {config['name']!r} is not a directory: {config['base_path']}"
            )
    return [ServedModel(c["name"], os.path.abspath(c["base_path"])) for c in configs]


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.file_system_poll_wait_seconds <= 0:
        parser.error(
            f"--file_system_poll_wait_seconds must be > 0, received {args.file_system_poll_wait_seconds}"
        )
    models = models_from_args(args, parser)
    server = ModelServer(
        (args.rest_api_host, args.rest_api_port),
        models,
        args.file_system_poll_wait_seconds,
        args.max_request_bytes,
        args.verbose,
    )

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    print(f"REST API at http://{host}:{port}/v1/models/ ({', '.join(server.models)})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    print("server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
