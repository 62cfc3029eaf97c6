"""HTTP routing: TF Serving's REST endpoints over the version repository."""

import json
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from serving.codec import predict, signature_def
from serving.errors import RequestError

PATH = re.compile(
    r"^/v1/models/([^/:]+)(?:/versions/(\d+))?(?:/(metadata)|:(predict|classify|regress))?$"
)


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
