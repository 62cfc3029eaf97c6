"""The error a request is answered with: an HTTP status and TF Serving's message."""


class RequestError(Exception):
    """An error answered to the client: an HTTP status and TF Serving's message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message
