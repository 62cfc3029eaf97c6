"""HTTP routing: TF Serving's REST endpoints over the version repository.

    GET  /v1/models/{name}[/versions/{v} | /labels/{label}]             model status
    GET  /v1/models/{name}[/versions/{v} | /labels/{label}]/metadata    signature defs
    POST /v1/models/{name}[/versions/{v} | /labels/{label}]:predict     row or columnar
    POST ...:classify, ...:regress                                     as for predict-only signatures

Paths are matched case-insensitively with TF Serving's own expressions and model names
URL-decoded; anything else under `/v1/` is answered 400 "Malformed request", other paths
404, methods other than GET and POST 405, all with TF Serving's `{"error": ...}` body.
"""

import re
import urllib.parse
from http import HTTPStatus

from serving.budget import DECODE_FACTOR, Budget, Reservation
from serving.codec import (
    check_classify_regress,
    check_structure,
    dumps,
    parse_json,
    predict_inputs,
    predict_reply,
)
from serving.errors import RequestError, invalid_argument, not_found
from serving.errors import quote as _quote
from serving.http_server import RestServer
from serving.images import ImageBudget
from serving.metadata import metadata_json, metadata_response, status_response, to_dict

PREDICTION = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)"
)
STATUS = re.compile(
    r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?"
)
V1 = re.compile(r"(?i)/v1/.*")


def _version(text):
    if not text:
        return None
    if len(text) > 18:
        raise invalid_argument(f"Failed to convert version: {_quote(text)} to numeric.")
    return int(text)


_PHRASES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class RestApi:
    """The WSGI application; `answer(method, path, body) -> (status, JSON bytes, headers)`."""

    def __init__(self, models, limits=None, budget=None):
        self.models = models  # name -> ServedModel
        self.limits = limits or ImageBudget()
        self.budget = budget

    def __call__(self, environ, start_response):
        method = environ["REQUEST_METHOD"]
        target = environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
        body = environ["wsgi.input"].read() if method == "POST" else b""
        status, payload, headers = self.answer(method, target.split("?", 1)[0], body)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            *headers,
        ]
        start_response(_PHRASES.get(status) or f"{status} Error", headers)
        return [payload]

    def answer(self, method, path, body):
        try:
            if method not in ("GET", "POST"):
                raise RequestError(
                    "INVALID_ARGUMENT",
                    f"Malformed request: {method} {_quote(path)} (method not allowed; the "
                    "REST API answers GET and POST)",
                    http_status=HTTPStatus.METHOD_NOT_ALLOWED,
                )
            if not V1.fullmatch(path):
                raise RequestError(
                    "NOT_FOUND", f"Not found: {method} {_quote(path)}", HTTPStatus.NOT_FOUND
                )
            payload = self.route(method, path, body)
            return HTTPStatus.OK, payload, []
        except RequestError as error:
            headers = [("Allow", "GET, POST")] if error.http_status == 405 else []
            return error.http_status, dumps({"error": error.message}), headers
        except MemoryError:  # load, not a model failure
            message = "server busy: out of memory decoding or running the request; retry later"
            return 429, dumps({"error": message}), [("Retry-After", "1")]
        except Exception as error:  # noqa: BLE001 - a model failure: the only 500
            return 500, dumps({"error": f"{type(error).__name__}: {error}"}), []

    def _model(self, name, version, label, request_kind):
        name = urllib.parse.unquote(name or "")
        if not name:
            raise invalid_argument("Missing model name in request.")
        model = self.models.get(name)
        if model is None:
            if label:
                raise invalid_argument(f"Unrecognized servable version label: {_quote(label)}")
            if request_kind == "status":
                raise not_found(f"Could not find any versions of model {_quote(name)}")
            name = _quote(name)
            spec = f"Latest({name})" if version is None else f"Specific({name}, {version})"
            raise not_found(f"Servable not found for request: {spec}")
        return model

    def route(self, method, path, body):
        match = PREDICTION.fullmatch(path) if method == "POST" else None
        if match:
            name, version, label, verb = match.groups()
            version = _version(version)
            label = urllib.parse.unquote(label) if label else None
            if verb not in ("predict", "classify", "regress"):  # TF Serving compares exactly
                raise invalid_argument(f"Malformed request: {method} {_quote(path)}")
            model = self._model(name, version, label, "predict")
            version = model.resolve(version, label)
            with Reservation(self.budget) as reservation:
                reservation.take(DECODE_FACTOR * len(body), "decoding the request")
                return self.predict(model, version, body, verb, reservation)
        match = STATUS.fullmatch(path) if method == "GET" else None
        if not match:
            raise invalid_argument(f"Malformed request: {method} {_quote(path)}")
        name, version, label, metadata = match.groups()
        version = _version(version)
        label = urllib.parse.unquote(label) if label else None
        kind = "metadata" if metadata == "metadata" else "status"
        model = self._model(name, version, label, kind)
        version = model.resolve(version, label)
        if kind == "status":
            return dumps(to_dict(status_response(model.name, model.status(version))))
        servable = model.acquire(version)
        try:
            response = metadata_response(model.name, servable.version, servable.signature_defs)
        finally:
            model.release(servable)
        return dumps(metadata_json(response))

    def predict(self, model, version, raw, verb, reservation=None):
        servable = model.acquire(version)
        try:
            check_structure(raw, servable)
            body = parse_json(raw)
            if verb != "predict":
                check_classify_regress(body, servable, verb)
            signature_name, inputs, rows = predict_inputs(body, servable, self.limits, reservation)
            _, outputs = servable.run(signature_name, inputs)
            return predict_reply(outputs, rows)
        finally:
            model.release(servable)


def rest_server(
    address,
    models,
    num_threads,
    timeout,
    max_request_bytes,
    limits=None,
    budget=None,
    max_connections=None,
):
    """A `RestServer` answering TF Serving's REST API for `models` (name -> ServedModel);
    `budget` (a `serving.budget.Budget`) is shared by the HTTP layer and the decoding."""
    budget = budget or Budget()
    return RestServer(
        address,
        RestApi(models, limits, budget),
        num_threads,
        timeout,
        max_request_bytes,
        budget,
        max_connections,
    )
