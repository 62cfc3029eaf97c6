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
- Strict framing (`serving.http_framing`), every refusal a JSON `{"error": ...}` body
  and a closed connection: `Content-Length` with `Transfer-Encoding` (400), a POST
  without a length (411), bare-LF header lines or bytes that are not HTTP (400 at once,
  not at the timeout), a body cut short by the client (400); waitress itself answers a
  coding other than chunked (501), an invalid or duplicate length (400) and a body over
  `max_body_bytes` (413: at once from its head, with no `100 Continue`).
- Budgets: a body takes its `Content-Length` from the server-wide `Budget` of bytes in
  flight before it is read (503 at once when it does not fit); connections beyond
  `max_connections` are answered 503 and closed at once instead of waiting in the
  kernel's backlog.
"""

import logging
import os
import time

import orjson
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, WSGITask
from waitress.utilities import BadRequest, RequestEntityTooLarge

from serving.budget import Budget
from serving.event_loop import IDLE_FLAGS, IncrementalPoll
from serving.http_framing import MAX_HEAD_BYTES, Parser, RequestTimeout, ServerBusy


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
        if isinstance(error, ServerBusy):
            self.response_headers.append(("Retry-After", "1"))
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
                if request.headers_finished and not request.completed:
                    self._reserve(request)
                if (
                    request.expect_continue
                    and request.headers_finished
                    and not request.completed  # refused from its head: no 100, at once
                    and not self.sent_continue
                ):
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

    def _reserve(self, request):
        """Takes the budget's share for the body of `request` (its whole Content-Length
        at once, a chunked body as it arrives), or completes it as a 503."""
        need = max(request.content_length, request.body_bytes_received)
        reserved = getattr(request, "reserved", 0)
        budget = self.server.budget
        if need <= reserved:
            return
        if budget.take(need - reserved):
            request.reserved = need
            return
        request.error = ServerBusy(
            f"server busy: requests in flight hold {budget.used} of the {budget.limit} bytes "
            f"of --max_in_flight_bytes, this body needs {need - reserved} more; retry later"
        )
        request.completed = True

    def service(self):
        request = self.requests[0]
        try:
            super().service()
        finally:
            self.server.budget.release(request)
            if self.close_when_flushed:
                for queued in list(self.requests):
                    self.server.budget.release(queued)

    def add_channel(self, map=None):
        super().add_channel(map)
        self.server.poll.mark(self._fileno)

    def idle(self, flags):
        """Whether only an event on its socket (or a timeout) can change this connection:
        readable, nothing to write, no request under way."""
        return flags == IDLE_FLAGS and not (
            self.requests
            or self.request is not None
            or self.total_outbufs_len
            or self.pending
            or self.will_close
            or self.close_when_flushed
            or self.ended
        )

    def del_channel(self, map=None):
        super().del_channel(map)
        if self.request is not None:
            self.server.budget.release(self.request)

    def refuse(self, error):
        """Answers the request being received with `error` and closes."""
        if self.request is not None:
            self.server.budget.release(self.request)
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
        budget: `serving.budget.Budget` or None. Bytes that bodies in flight may hold
            together; a body that does not fit is answered 503 from its head. Defaults
            to `None`: a budget of `serving.budget.DEFAULT_BYTES`.
        max_connections: int or None. Open connections beyond it are answered 503 and
            closed at once. Defaults to None: the open-file limit less 64.
    """

    channel_class = Channel

    def __init__(
        self,
        address,
        app,
        num_threads,
        timeout,
        max_body_bytes,
        budget=None,
        max_connections=None,
    ):
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "queue depth" under load
        super().__init__(
            app,
            host=address[0],
            port=address[1],
            threads=num_threads,
            channel_timeout=max(1, int(timeout)),
            connection_limit=max_connections or _connection_limit(),
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
        self.budget = budget or Budget()
        self.poll = IncrementalPoll(
            self._map, lambda obj, flags: isinstance(obj, Channel) and obj.idle(flags)
        )
        self.adj.cleanup_interval = self.adj.asyncore_loop_timeout = min(1.0, timeout / 4)
        self.server_address = (self.effective_host, self.effective_port)
        self._stopped = False

    def readable(self):
        # waitress stops accepting at its connection limit, so new connections wait in
        # the kernel's backlog (a normal predict waited 29.9 s); here they are refused
        now = time.time()
        if now >= self.next_channel_cleanup:
            self.next_channel_cleanup = now + self.adj.cleanup_interval
            self.maintenance(now)
        return self.accepting

    def handle_accept(self):
        if len(self.active_channels) < self.adj.connection_limit:
            return super().handle_accept()
        try:
            conn, _ = self.accept() or (None, None)
        except OSError:
            return
        if conn is not None:
            try:
                conn.send(_TOO_MANY_CONNECTIONS)
            except OSError:
                pass
            conn.close()

    def maintenance(self, now):
        for channel in list(self.active_channels.values()):
            channel.expire(now, self.timeout)
        self.poll.mark()  # timeouts change idle connections: ask every one again

    def serve_forever(self):
        while not self._stopped:
            self.poll.run(self.adj.asyncore_loop_timeout)

    def shutdown(self):
        self._stopped = True
        self.pull_trigger()

    def server_close(self):
        self._stopped = True
        self.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        wasyncore.close_all(self._map)
        self.poll.close()


_BUSY_BODY = b'{"error": "server busy: too many open connections; retry later"}'
_TOO_MANY_CONNECTIONS = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s"
    % (len(_BUSY_BODY), _BUSY_BODY)
)


def _connection_limit():
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        return max(16, soft - 64) if soft > 0 else 4096
    except (ImportError, ValueError, OSError):
        return 4096


def default_num_threads():
    return 4 * (os.cpu_count() or 1)  # TF Serving's default for --rest_api_num_threads
