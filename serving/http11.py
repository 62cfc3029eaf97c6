"""A small HTTP/1.1 server: one selector thread buffers requests, a bounded pool answers.

Connections cost no thread while idle or while a request arrives: the selector thread
reads until a request is complete (headers, then a `Content-Length` or chunked body)
and only then hands it to one of `num_threads` workers. Every connection has a deadline
(`timeout` seconds to send a complete request, and to stay idle between requests); a
late partial request is answered 408 and closed, an idle one closed. Framing is strict:
a duplicate or invalid `Content-Length`, both it and `Transfer-Encoding`, a coding other
than `chunked`, a POST without a length, a body cut short or over `max_body_bytes` are
answered (400, 501, 411, 400, 413) and the connection is closed. The listen backlog is
`socket.SOMAXCONN`.
"""

import errno
import json
import os
import queue
import selectors
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

MAX_HEAD_BYTES = 64 << 10
LINGER_SECONDS = 2.0


class HttpError(Exception):
    """A framing error: answered with `status` and the connection closed."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = int(status)
        self.message = message


class Request:
    def __init__(self, method, target, version, headers, body):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # [(lower-case name, value)]
        self.body = body

    def header_values(self, name):
        return [v for k, v in self.headers if k == name]

    @property
    def keep_alive(self):
        tokens = {t.strip().lower() for v in self.header_values("connection") for t in v.split(",")}
        if self.version == "HTTP/1.1":
            return "close" not in tokens
        return "keep-alive" in tokens


def _parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
        raise HttpError(HTTPStatus.BAD_REQUEST, f"Malformed request line: {lines[0][:100]!r}")
    method, target, version = parts
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise HttpError(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"{version[:20]} is not supported")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or line[0] in " \t":
            raise HttpError(HTTPStatus.BAD_REQUEST, f"Malformed header line: {line[:100]!r}")
        headers.append((name.lower(), value.strip()))
    return method, target, version, headers


def _chunked_body(buffer, start, limit):
    """`(body, end)` of a complete chunked body from `start`, or `None` if incomplete."""
    body, position = bytearray(), start
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            if len(buffer) - position > 1024:
                raise HttpError(HTTPStatus.BAD_REQUEST, "Malformed chunk size line")
            return None
        size_text = bytes(buffer[position:line_end]).split(b";", 1)[0].strip()
        if not size_text or len(size_text) > 15 or size_text.strip(b"0123456789abcdefABCDEF"):
            raise HttpError(HTTPStatus.BAD_REQUEST, "Malformed chunk size")
        size = int(size_text, 16)
        position = line_end + 2
        if size == 0:  # trailers until an empty line
            while True:
                line_end = buffer.find(b"\r\n", position)
                if line_end < 0:
                    return None
                empty = line_end == position
                position = line_end + 2
                if empty:
                    return bytes(body), position
        if len(body) + size > limit:
            raise HttpError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"request body exceeds the limit of {limit} bytes",
            )
        if len(buffer) < position + size + 2:
            return None
        if buffer[position + size : position + size + 2] != b"\r\n":
            raise HttpError(HTTPStatus.BAD_REQUEST, "Malformed chunk: no CRLF after its data")
        body += buffer[position : position + size]
        position += size + 2


class _Connection:
    def __init__(self, sock, deadline):
        self.sock = sock
        self.buffer = bytearray()
        self.deadline = deadline
        self.continued = False
        self.lingering = False


class HttpServer:
    """Serves `app(request) -> (status, body bytes, [(header, value)])` over HTTP/1.1.

    Args:
        address: `(host, port)`.
        app: the request handler; it must not raise.
        num_threads: int. Workers answering requests.
        timeout: float. Seconds a connection may take to send a request, or stay idle.
        max_body_bytes: int. Larger bodies are answered 413.
    """

    def __init__(self, address, app, num_threads, timeout, max_body_bytes):
        self.app = app
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.listener = socket.create_server(address, backlog=socket.SOMAXCONN)
        self.listener.setblocking(False)
        self.server_address = self.listener.getsockname()
        self.pool = ThreadPoolExecutor(num_threads, thread_name_prefix="rest")
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._returned = queue.SimpleQueue()
        self._connections = {}  # socket -> _Connection, all open ones
        self._waiting = set()  # connections registered with the selector
        self._stopped = threading.Event()
        self._done = threading.Event()
        try:
            import resource

            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            self.max_connections = max(16, soft - 64) if soft > 0 else 4096
        except (ImportError, ValueError, OSError):
            self.max_connections = 4096

    # === Selector thread ===

    def serve_forever(self):
        try:
            while not self._stopped.is_set():
                for key, _ in self.selector.select(timeout=0.25):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "wake":
                        self._drain_wake()
                    else:
                        self._read(key.data)
                self._expire()
        finally:
            self._done.set()

    def _accept(self):
        for _ in range(64):
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    print(f"REST: cannot accept: {error}", file=sys.stderr, flush=True)
                    time.sleep(0.05)
                return
            if len(self._connections) >= self.max_connections:
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _Connection(sock, time.monotonic() + self.timeout)
            self._connections[sock] = connection
            self._wait(connection)

    def _wait(self, connection):
        self.selector.register(connection.sock, selectors.EVENT_READ, connection)
        self._waiting.add(connection)

    def _unwait(self, connection):
        self.selector.unregister(connection.sock)
        self._waiting.discard(connection)

    def _drain_wake(self):
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                connection = self._returned.get_nowait()
            except queue.Empty:
                return
            self._wait(connection)
            if not connection.lingering:
                self._advance(connection)  # a pipelined request may already be buffered

    def _read(self, connection):
        try:
            data = connection.sock.recv(1 << 18)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if connection.lingering:
            if not data:
                self._unwait(connection)
                self._close(connection)
            return
        if not data:
            self._unwait(connection)
            if connection.buffer.strip():
                self._dispatch_error(
                    connection, HttpError(HTTPStatus.BAD_REQUEST, "request ended before its body")
                )
            else:
                self._close(connection)
            return
        connection.buffer += data
        self._advance(connection)

    def _advance(self, connection):
        try:
            request = self._parse(connection)
        except HttpError as error:
            self._unwait(connection)
            self._dispatch_error(connection, error)
            return
        if request is not None:
            self._unwait(connection)
            self.pool.submit(self._answer, connection, request)

    def _parse(self, connection):
        buffer = connection.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                raise HttpError(
                    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request headers too large"
                )
            if buffer[:2] == b"\r\n":  # tolerate blank lines between requests
                del buffer[:2]
            return None
        method, target, version, headers = _parse_head(bytes(buffer[:end]))
        request = Request(method, target, version, headers, b"")
        lengths = [p.strip() for v in request.header_values("content-length") for p in v.split(",")]
        codings = [
            p.strip().lower()
            for v in request.header_values("transfer-encoding")
            for p in v.split(",")
        ]
        start = end + 4
        if codings:
            if lengths:
                raise HttpError(
                    HTTPStatus.BAD_REQUEST, "both Content-Length and Transfer-Encoding given"
                )
            if codings != ["chunked"]:
                raise HttpError(
                    HTTPStatus.NOT_IMPLEMENTED, f"Transfer-Encoding {codings} is not supported"
                )
            self._continue(connection, request, len(buffer) > start)
            done = _chunked_body(buffer, start, self.max_body_bytes)
            if done is None:
                return None
            request.body, consumed = done
        elif lengths:
            if len(lengths) != 1:
                raise HttpError(HTTPStatus.BAD_REQUEST, "duplicate Content-Length headers")
            text = lengths[0]
            if not (text.isascii() and text.isdigit()) or len(text) > 15:
                raise HttpError(HTTPStatus.BAD_REQUEST, f"invalid Content-Length: {text[:30]!r}")
            length = int(text)
            if length > self.max_body_bytes:
                raise HttpError(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    f"request body of {length} bytes exceeds the limit of {self.max_body_bytes}",
                )
            if len(buffer) < start + length:
                self._continue(connection, request, len(buffer) > start)
                return None
            request.body = bytes(buffer[start : start + length])
            consumed = start + length
        elif method == "POST":
            raise HttpError(HTTPStatus.LENGTH_REQUIRED, "POST needs a Content-Length")
        else:
            consumed = start
        del buffer[:consumed]
        connection.continued = False
        return request

    def _continue(self, connection, request, started):
        expect = [v.lower() for v in request.header_values("expect")]
        if "100-continue" in expect and not connection.continued and not started:
            connection.continued = True
            try:
                connection.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            except OSError:
                pass

    def _expire(self):
        now = time.monotonic()
        for connection in [c for c in self._waiting if c.deadline < now]:
            self._unwait(connection)
            if connection.lingering:
                self._close(connection)
            elif connection.buffer.strip():
                self._dispatch_error(
                    connection,
                    HttpError(
                        HTTPStatus.REQUEST_TIMEOUT,
                        f"request not received within {self.timeout:g} s",
                    ),
                )
            else:
                self._close(connection)

    def _dispatch_error(self, connection, error):
        self.pool.submit(self._send_error, connection, error)

    def _close(self, connection):
        self._connections.pop(connection.sock, None)
        try:
            connection.sock.close()
        except OSError:
            pass

    # === Workers ===

    def _send(self, connection, status, body, headers, close):
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        head = [f"HTTP/1.1 {status} {phrase}", "Content-Type: application/json"]
        head += [f"{k}: {v}" for k, v in headers]
        head.append(f"Content-Length: {len(body)}")
        if close:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        try:
            connection.sock.settimeout(self.timeout)
            connection.sock.sendall(data)
            connection.sock.setblocking(False)
            return True
        except OSError:
            return False

    def _send_error(self, connection, error):
        body = b'{"error": %s}' % json.dumps(error.message).encode()
        self._send(connection, error.status, body, [], close=True)
        self._hang_up(connection)

    def _hang_up(self, connection):
        """Shuts down writing, then lets the selector drain input briefly before closing,
        so the client reads the reply instead of a reset."""
        try:
            connection.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(connection)
            return
        connection.lingering = True
        connection.deadline = time.monotonic() + LINGER_SECONDS
        self._hand_back(connection)

    def _hand_back(self, connection):
        self._returned.put(connection)
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _answer(self, connection, request):
        try:
            status, body, headers = self.app(request)
        except Exception as error:  # noqa: BLE001 - the app should not raise; never hang up
            status, body, headers = (
                500,
                b'{"error": "internal error: %s"}' % repr(str(error)).encode(),
                [],
            )
        close = not request.keep_alive or self._stopped.is_set()
        sent = self._send(connection, status, body, headers, close)
        if not sent:
            self._close(connection)
        elif close:
            self._hang_up(connection)
        else:
            connection.deadline = time.monotonic() + self.timeout
            self._hand_back(connection)

    # === Life cycle ===

    def shutdown(self):
        self._stopped.set()
        self._done.wait(5)

    def server_close(self):
        self._stopped.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        for connection in list(self._connections.values()):
            self._close(connection)
        self.selector.close()
        self.listener.close()
        self._wake_r.close()
        self._wake_w.close()


def default_num_threads():
    return 4 * (os.cpu_count() or 1)  # TF Serving's default for --rest_api_num_threads
