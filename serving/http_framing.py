"""Request framing for the REST API's HTTP server: waitress's parser, stricter.

What waitress 3 lacks and `serving.http_server` needs: a request head that is not HTTP,
or has bare-LF lines, is refused at once (waitress would wait for the blank line until
the timeout); `Content-Length` with `Transfer-Encoding` and a POST without a length are
refused (waitress reads the first as chunked and the second as empty); a length of
thousands of digits is 400 (waitress raises an uncaught ValueError); chunked bodies are
read in one linear pass (`ChunkedBody`) with capped size lines and trailers and at most
1,024 chunks plus one per KiB of data (waitress re-slices the rest of each piece per
chunk and keeps trailers unbounded).
"""

import re

from waitress.parser import HTTPRequestParser, ParsingError
from waitress.receiver import ChunkedReceiver
from waitress.rfc7230 import ONLY_HEXDIG_RE
from waitress.utilities import BadRequest, Error, RequestHeaderFieldsTooLarge

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


class ServerBusy(Error):
    code = 503
    reason = "Service Unavailable"


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
        try:
            super().parse_header(header_plus)
        except ValueError:  # int() of a Content-Length past Python's 4,300 digits
            raise ParsingError("Content-Length is invalid") from None
        headers = self.headers
        if self.chunked:
            if "CONTENT_LENGTH" in headers:
                raise ParsingError("both Content-Length and Transfer-Encoding given")
            self.body_rcv = ChunkedBody(self.body_rcv.buf)
        elif "TRANSFER_ENCODING" in headers:
            raise ParsingError(f"Transfer-Encoding needs HTTP/1.1, received HTTP/{self.version}")
        elif self.command == "POST" and "CONTENT_LENGTH" not in headers:
            self.error = LengthRequired("POST needs a Content-Length")
