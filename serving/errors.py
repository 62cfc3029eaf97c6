"""The error a request is answered with: a canonical code and TF Serving's message.

Codes are TensorFlow's (`tensorflow/core/protobuf/error_codes.proto`); the REST API maps
them to HTTP statuses as TF Serving's `ToHTTPStatusCode` does, the gRPC API sends them
as they are.
"""

from http import HTTPStatus

HTTP_STATUS = {
    "OK": HTTPStatus.OK,
    "CANCELLED": 499,
    "UNKNOWN": HTTPStatus.INTERNAL_SERVER_ERROR,
    "INVALID_ARGUMENT": HTTPStatus.BAD_REQUEST,
    "DEADLINE_EXCEEDED": HTTPStatus.GATEWAY_TIMEOUT,
    "NOT_FOUND": HTTPStatus.NOT_FOUND,
    "ALREADY_EXISTS": HTTPStatus.CONFLICT,
    "PERMISSION_DENIED": HTTPStatus.FORBIDDEN,
    "RESOURCE_EXHAUSTED": HTTPStatus.TOO_MANY_REQUESTS,
    "FAILED_PRECONDITION": HTTPStatus.BAD_REQUEST,
    "ABORTED": HTTPStatus.CONFLICT,
    "OUT_OF_RANGE": HTTPStatus.BAD_REQUEST,
    "UNIMPLEMENTED": HTTPStatus.NOT_IMPLEMENTED,
    "INTERNAL": HTTPStatus.INTERNAL_SERVER_ERROR,
    "UNAVAILABLE": HTTPStatus.SERVICE_UNAVAILABLE,
    "DATA_LOSS": HTTPStatus.INTERNAL_SERVER_ERROR,
    "UNAUTHENTICATED": HTTPStatus.UNAUTHORIZED,
}


class RequestError(Exception):
    """An error answered to the client.

    Args:
        code: str. A canonical error code name, such as `"INVALID_ARGUMENT"`.
        message: str. TF Serving's message for it.
        http_status: int. Overrides the HTTP status of `code` for errors that exist
            only in HTTP (413, 405, 411, ...). Defaults to `None`.
    """

    def __init__(self, code, message, http_status=None):
        if code not in HTTP_STATUS:
            raise ValueError(f"`code` must be one of {sorted(HTTP_STATUS)}. Received: code={code}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = int(http_status or HTTP_STATUS[code])


def invalid_argument(message):
    return RequestError("INVALID_ARGUMENT", message)


def not_found(message):
    return RequestError("NOT_FOUND", message)


MAX_QUOTED = 200  # characters of client input an error message repeats


def quote(text, limit=MAX_QUOTED):
    """`text` (client input) cut to `limit` characters for an error message."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"
