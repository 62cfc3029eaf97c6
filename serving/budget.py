"""The server-wide budget of memory that requests in flight may hold.

One `Budget` is shared by both APIs. A request takes its share before the memory is
allocated and gives it back when it is answered: the REST body as soon as its
`Content-Length` is known (a chunked body as it arrives), then, while the request is
decoded and run, `DECODE_FACTOR` times its body (parsed JSON, numpy tensors, the
model's input copy) and `BYTES_PER_PIXEL` per pixel of its encoded images; a gRPC
request `DECODE_FACTOR` times its message. A share that does not fit is refused at
once: HTTP 503 (`Retry-After: 1`) for a body, RESOURCE_EXHAUSTED (HTTP 429) for the
decoding, so load is never answered 500 and never allocates first.
"""

import threading

from serving import malloc
from serving.errors import RequestError

DEFAULT_BYTES = 1 << 30
DECODE_FACTOR = 4  # bytes held while decoding, per byte of body
BYTES_PER_PIXEL = 16  # a decoded RGB pixel: 3 uint8 bytes, then 12 as float32 in the model
TRIM_AFTER = 64 << 20  # a request that held this much gives its memory back to the system


class Budget:
    """A count of bytes in flight, at most `limit`.

    Args:
        limit: int. Bytes that requests in flight may hold together.
    """

    def __init__(self, limit=DEFAULT_BYTES):
        if limit < 1:
            raise ValueError(f"`limit` must be a positive integer. Received: limit={limit}")
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self, n):
        """Takes `n` bytes if they fit; returns whether they did."""
        with self._lock:
            if self.used + n > self.limit:
                return False
            self.used += n
            return True

    def give(self, n):
        with self._lock:
            self.used -= n

    def release(self, holder):
        """Gives back what `holder.reserved` holds, once (any thread may call it)."""
        with self._lock:
            n = getattr(holder, "reserved", 0)
            holder.reserved = 0
            self.used -= n
        return n


class Reservation:
    """One request's share of a `Budget`, given back on leaving the `with` block."""

    def __init__(self, budget):
        self.budget = budget
        self.reserved = 0

    def take(self, n, what):
        """Takes `n` more bytes for `what`, or raises RESOURCE_EXHAUSTED."""
        if self.budget is None or n <= 0:
            return
        if not self.budget.take(n):
            raise RequestError(
                "RESOURCE_EXHAUSTED",
                f"server busy: {what} needs {n} bytes and requests in flight hold "
                f"{self.budget.used} of the {self.budget.limit} of --max_in_flight_bytes; "
                "retry later",
            )
        self.reserved += n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.budget is not None and self.budget.release(self) >= TRIM_AFTER:
            malloc.trim()
