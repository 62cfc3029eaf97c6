"""The REST API's HTTP/1.1 server: waitress, with TF Serving's framing rules and timeouts.

waitress (a maintained, pure-Python WSGI server) reads and writes every connection on
one asynchronous thread and runs the application on a pool of `num_threads` workers;
replies are buffered and written by the asynchronous thread, so a client that does not
read never holds a worker. This module narrows waitress to what the REST API needs:

- One request per connection at a time: bytes a client pipelines behind a request are
  parsed only once its reply has been sent (as libevent's evhttp, TF Serving's HTTP
  layer, does), so a client that never reads holds one reply, never a worker.
- Deadlines: a request must arrive complete within `timeout` seconds of its first byte
  (408 and close otherwise, however slowly it trickles); a connection idle, or not
  reading its reply, for `timeout` seconds is closed.
- Strict framing, every refusal a JSON `{"error": ...}` body and a closed connection:
  `Content-Length` with `Transfer-Encoding` (400), a coding other than chunked (501),
  a POST without a length (411), an invalid or duplicate length (400), a body over
  `max_body_bytes` (413), bare-LF header lines or bytes that are not HTTP (400 at once,
  not at the timeout), a body cut short by the client (400).
- Chunked bodies parsed in one linear pass (`ChunkedBody`) with capped size lines and
  trailers and at most 1,024 chunks plus one per KiB of data.
"""

import logging
import os
import re
import time

import orjson
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError
from waitress.receiver import ChunkedReceiver
from waitress.rfc7230 import ONLY_HEXDIG_RE
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, WSGITask
from waitress.utilities import (
    BadRequest,
    Error,
    RequestEntityTooLarge,
    RequestHeaderFieldsTooLarge,
)

MAX_HEAD_BYTES = 64 << 10
MAX_CHUNK_LINE = 1024
MAX_TRAILER_BYTES = 8 << 10
FREE_CHUNKS = 1024  # chunks allowed beyond one per KiB of data
_BARE_LF = re.compile(rb"(?<!\r)\n")


class LengthRequired(Error):
    code = 411
    reason = "Length Required"


class RequestTimeout(Error):
    code = 408
    reason = "Request Timeout"


def _head_error(previous, data):
    """Why the request head `previous + data` is not HTTP/1.1, or `None`."""
    head = previous + data
    end = head.find(b"\r\n\r\n")
    region = head if end < 0 else head[:end]
    start = region.lstrip(b"\r\n")[:1]
    if start and not start.isalpha():
        return f"not an HTTP request (it starts with byte 0x{start[0]:02x})"
    if _BARE_LF.search(region, max(0, len(previous) - 1)):
        return "header lines must end in CRLF (bare LF received)"
    return None


class ChunkedBody(ChunkedReceiver):
    """A chunked body read in one pass over each piece received (waitress's own
    receiver re-slices the rest of the piece per chunk and keeps trailers unbounded)."""

    def __init__(self, buf):
        super().__init__(buf)
        self.state = "size"  # size, data, end (the CRLF after data), trailer
        self.line = bytearray()
        self.remaining = self.chunks = self.data_bytes = self.trailer_bytes = 0

    def _fail(self, error):
        self.error = error
        self.all_chunks_received = True

    def received(self, s):
        if self.completed or self.error:
            return 0
        i, n = 0, len(s)
        while i < n:
            if self.state == "data":
                take = min(self.remaining, n - i)
                self.buf.append(s[i : i + take])
                i += take
                self.remaining -= take
                if not self.remaining:
                    self.state = "end"
                continue
            end = s.find(b"\n", i)
            self.line += s[i : n if end < 0 else end + 1]
            i = n if end < 0 else end + 1
            if self.state == "trailer":
                too_long = self.trailer_bytes + len(self.line) > MAX_TRAILER_BYTES
            else:
                too_long = len(self.line) > MAX_CHUNK_LINE
            if too_long:
                if self.state == "trailer":
                    self._fail(
                        RequestHeaderFieldsTooLarge(f"trailers exceed {MAX_TRAILER_BYTES} bytes")
                    )
                else:
                    self._fail(BadRequest(f"chunk line over {MAX_CHUNK_LINE} bytes"))
                return i
            if end < 0:
                break
            line = bytes(self.line)
            self.line.clear()
            if not line.endswith(b"\r\n") or b"\r" in line[:-2]:
                self._fail(BadRequest("chunk lines must end in CRLF"))
                return i
            self._line(line[:-2])
            if self.error or self.completed:
                return i
        return i

    def _line(self, line):
        if self.state == "end":
            if line:
                self._fail(BadRequest("Chunk not properly terminated"))
            self.state = "size"
        elif self.state == "trailer":
            if not line:
                self.completed = True
            self.trailer_bytes += len(line) + 2
        else:
            size = line.split(b";", 1)[0].strip(b" \t")
            if not size or len(size) > 15 or not ONLY_HEXDIG_RE.match(size):
                self._fail(BadRequest("Invalid chunk size"))
                return
            self.remaining = int(size, 16)
            if not self.remaining:
                self.state = "trailer"
                self.all_chunks_received = True
                return
            self.chunks += 1
            self.data_bytes += self.remaining
            if self.chunks > FREE_CHUNKS + self.data_bytes // 1024:
                self._fail(
                    BadRequest(
                        f"too many chunks: {self.chunks} for {self.data_bytes} bytes (at most "
                        f"{FREE_CHUNKS} plus one per KiB)"
                    )
                )
                return
            self.state = "data"


class Parser(HTTPRequestParser):
    """waitress's request parser with the REST API's stricter framing."""

    def received(self, data):
        if self.body_rcv is None and not self.completed:
            problem = _head_error(self.header_plus, data)
            if problem:
                self.refuse(BadRequest(problem))
                return len(data)
        return super().received(data)

    def refuse(self, error):
        """Completes this request as the error `error`."""
        self.parse_header(b"GET / HTTP/1.1\r\n")
        self.error = error
        self.completed = self.headers_finished = True

    def parse_header(self, header_plus):
        super().parse_header(header_plus)
        headers = self.headers
        if self.chunked:
            if "CONTENT_LENGTH" in headers:
                raise ParsingError("both Content-Length and Transfer-Encoding given")
            self.body_rcv = ChunkedBody(self.body_rcv.buf)
        elif "TRANSFER_ENCODING" in headers:
            raise ParsingError(f"Transfer-Encoding needs HTTP/1.1, received HTTP/{self.version}")
        elif self.command == "POST" and "CONTENT_LENGTH" not in headers:
            self.error = LengthRequired("POST needs a Content-Length")


class JsonErrorTask(ErrorTask):
    """A framing error answered as TF Serving answers errors: `{"error": message}`."""

    def execute(self):
        error = self.request.error
        message = error.body
        if isinstance(error, RequestEntityTooLarge):
            limit = self.channel.adj.max_request_body_size - 1
            message = f"request body exceeds the limit of {limit} bytes"
        body = orjson.dumps({"error": message}).replace(b'{"error":', b'{"error": ', 1)
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class Task(WSGITask):
    """waitress's WSGI task, writing the head and a whole body in one send (waitress
    writes them apart: two system calls and two segments for the client to wait on)."""

    def write(self, data):
        if self.wrote_header or not data or not self.complete or not self.has_body:
            return super().write(data)
        head = self.build_response_header()
        self.wrote_header = True
        if self.chunked_response or self.content_length is None:
            self.channel.write_soon(head)
            return super().write(data)
        data = data[: self.content_length]
        self.content_bytes_written += len(data)
        self.channel.write_soon(head + data)


class Channel(HTTPChannel):
    """One connection: one request at a time, request deadlines, 400 on a cut body."""

    parser_class = Parser
    task_class = Task
    error_task_class = JsonErrorTask
    pending = b""  # bytes after the request being answered, parsed once it is sent
    started = 0.0  # when the current request's first byte arrived
    ended = False  # the client shut down its side during a request

    def _partial(self):
        request = self.request
        return bool(self.pending.strip()) or (
            request is not None and (request.headers_finished or request.header_plus.strip())
        )

    def _busy(self):
        return self.requests or self.total_outbufs_len or self.will_close or self.close_when_flushed

    def handle_read(self):
        try:
            data = self.socket.recv(self.adj.recv_bytes)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.handle_close()
            return
        if data:
            self.last_activity = time.time()
            self.received(data)
        elif self._busy():  # half-closed while answered: send the reply, then close
            self.ended = self.close_when_flushed = True
        elif self._partial():
            self.ended = True
            self.refuse(BadRequest("request ended before its body"))
        else:
            self.handle_close()

    def writable(self):
        # While a worker answers, it sends its reply itself (waitress flushes in
        # `write_soon`); polling for POLLOUT meanwhile made the loop spin on the outbuf lock
        # the worker holds, taking the GIL from it. The loop takes over what is left once
        # the worker is done (it wakes the loop), or when a reply passes the high watermark.
        if self.requests and self.total_outbufs_len <= self.adj.outbuf_high_watermark:
            return self.will_close
        return super().writable()

    def readable(self):
        if self.ended:
            return False
        if self.pending and not self._busy():
            data, self.pending = self.pending, b""
            self.received(data)
        return super().readable()

    def received(self, data):
        if not data:
            return False
        with self.requests_lock:
            if self.will_close or self.close_when_flushed:
                return False
            if self.pending:
                data, self.pending = self.pending + data, b""
            if self.requests or self.total_outbufs_len:
                self.pending = data
                return True
            while data:
                if self.request is None:
                    self.request = self.parser_class(self.adj)
                    self.started = time.time()
                request = self.request
                n = request.received(data)
                if request.expect_continue and request.headers_finished and not self.sent_continue:
                    self.send_continue()
                if request.completed:
                    self.sent_continue = False
                    self.request = None
                    if not request.empty:
                        self.requests.append(request)
                        self.server.add_task(self)
                        self.pending = data[n:]
                        return True
                if n >= len(data):
                    break
                data = data[n:]
        return True

    def refuse(self, error):
        """Answers the request being received with `error` and closes."""
        with self.requests_lock:
            request = self.parser_class(self.adj)
            request.refuse(error)
            self.request, self.pending = None, b""
            self.requests.append(request)
            if len(self.requests) == 1:
                self.server.add_task(self)

    def expire(self, now, timeout):
        if self.requests or self.will_close or self.close_when_flushed:
            return
        if self.total_outbufs_len or not self._partial():  # idle, or not reading its reply
            if self.last_activity < now - timeout:
                self.will_close = True
        elif now - self.started > timeout:
            self.refuse(RequestTimeout(f"request not received within {timeout:g} s"))


class RestServer(TcpWSGIServer):
    """Serves the WSGI `app` on `address` with the rules above.

    Args:
        address: `(host, port)`; port 0 picks a free one.
        app: a WSGI application.
        num_threads: int. Workers running the application.
        timeout: float. Seconds to send a request, or to stay idle or not reading.
        max_body_bytes: int. Larger bodies are answered 413.
    """

    channel_class = Channel

    def __init__(self, address, app, num_threads, timeout, max_body_bytes):
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "queue depth" under load
        super().__init__(
            app,
            host=address[0],
            port=address[1],
            threads=num_threads,
            channel_timeout=max(1, int(timeout)),
            connection_limit=_connection_limit(),
            max_request_body_size=max_body_bytes + 1,  # waitress refuses from the limit on
            max_request_header_size=MAX_HEAD_BYTES,
            inbuf_overflow=max_body_bytes + 1,  # bodies stay in memory, as replies do
            outbuf_overflow=1 << 62,
            recv_bytes=1 << 18,
            ident=None,
            clear_untrusted_proxy_headers=False,
            log_socket_errors=False,
            asyncore_use_poll=True,
        )
        self.timeout = timeout
        self.adj.cleanup_interval = self.adj.asyncore_loop_timeout = min(1.0, timeout / 4)
        self.server_address = (self.effective_host, self.effective_port)
        self._stopped = False

    def maintenance(self, now):
        for channel in list(self.active_channels.values()):
            channel.expire(now, self.timeout)

    def serve_forever(self):
        while not self._stopped:
            wasyncore.loop(self.adj.asyncore_loop_timeout, True, self._map, count=1)

    def shutdown(self):
        self._stopped = True
        self.pull_trigger()

    def server_close(self):
        self._stopped = True
        self.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        wasyncore.close_all(self._map)


def _connection_limit():
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        return max(16, soft - 64) if soft > 0 else 4096
    except (ImportError, ValueError, OSError):
        return 4096


def default_num_threads():
    return 4 * (os.cpu_count() or 1)  # TF Serving's default for --rest_api_num_threads
