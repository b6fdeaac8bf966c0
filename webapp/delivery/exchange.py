"""One HTTP/1.1 request and its response on a kept-alive connection (direct sends).

DESIGN: per request, http.client and urllib3 cost about 180 µs of CPU here
(each header validated and written through ``putheader``, the response's
headers parsed by the email package, two layers of response objects): four
times the socket work, and most of a worker's time on a fast receiver. Here
the request goes out in one send and llhttp (httptools, the parser uvicorn
uses) reads the answer, for about 60 µs. What is hand-written is only the
request head and the bookkeeping around the parser's callbacks: no library
offers a blocking HTTP/1.1 exchange on a socket that is this lean. Connections
stay urllib3's (resolving, the SSRF guard, TLS: see ``transport``), and sends
through a proxy keep urllib3's whole exchange (absolute targets, CONNECT).
"""
from __future__ import annotations

import re
from collections import deque
from typing import Callable

import httptools

READ_SIZE = 64 * 1024
# The most an answer may send before its head is complete (interim answers included): a receiver
# that streams headers without end cannot fill a worker's memory (http.client stops at 100 lines).
MAX_HEAD_BYTES = 64 * 1024
# RFC 9110 field names are tokens; values never hold a line break or NUL (no obsolete line folding).
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
HEADER_VALUE_FORBIDDEN = re.compile(r"[\r\n\x00]")
TARGET_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
NO_BODY_STATUSES = frozenset({204, 304})


class ExchangeError(Exception):
    """The receiver's side of the exchange broke off or made no sense (the text says how)."""


class InvalidHeader(ValueError):
    """A header name or value HTTP does not allow (the text never quotes it: it may be a secret)."""


def request_head(method: str, target: str, host: str, headers: dict[str, str], body_length: int) -> bytes:
    """The request line and header block, as urllib3 would write them: Host, Accept-Encoding and
    Content-Length unless the caller set its own."""
    if TARGET_FORBIDDEN.search(target):
        raise ValueError("the request target holds a space or a control character")
    given = {name.lower() for name in headers}
    lines = [f"{method} {target} HTTP/1.1"]
    if "host" not in given:
        lines.append(f"Host: {host}")
    if "accept-encoding" not in given:
        lines.append("Accept-Encoding: identity")
    if "content-length" not in given:
        lines.append(f"Content-Length: {body_length}")
    for name, value in headers.items():
        if not HEADER_NAME.fullmatch(name):
            raise InvalidHeader("invalid header name")
        if HEADER_VALUE_FORBIDDEN.search(value):
            raise InvalidHeader("invalid header value")
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


class Headers:
    """A response's header fields in the order they came; ``get`` finds the first by any case."""

    __slots__ = ("_fields",)

    def __init__(self, fields: list[tuple[str, str]]):
        self._fields = fields

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)

    def get(self, name: str, default=None):
        name = name.lower()
        for key, value in self._fields:
            if key.lower() == name:
                return value
        return default


class Response:
    """The answer to one request: status, reason and headers once ``read_head`` returned, then the
    body chunk by chunk from ``read1``; ``release_conn`` hands a connection whose exchange ended
    cleanly back to its pool, ``close`` closes it. Mirrors the part of urllib3's response the
    sender reads, so sends through a proxy (urllib3's response) are read the same way."""

    def __init__(self, connection, give_back: Callable[[object], None]):
        self._connection = connection
        self._sock = connection.sock
        self._give_back = give_back
        self._parser = httptools.HttpResponseParser(self)
        self._fields: list[tuple[str, str]] = []
        self._reason = b""
        self._chunks: deque[bytes] = deque()
        self._head_done = self._complete = self._reusable = self._upgraded = False
        self._done_with = False
        self._head_bytes = 0
        self.status = 0
        self.reason = ""
        self.headers = Headers([])

    # ------------------------------------------------------------------ what the sender calls

    def read_head(self) -> None:
        while not self._head_done:
            self._head_bytes += self._receive()
            if not self._head_done and self._head_bytes > MAX_HEAD_BYTES:
                raise ExchangeError(f"the receiver's answer head is larger than {MAX_HEAD_BYTES // 1024} KiB")

    def read1(self, amount: int = READ_SIZE) -> bytes:
        """The next piece of the body (at most one network read's worth); b"" at its end."""
        while not self._chunks and not self._complete and not self._upgraded:
            self._receive()
        return self._chunks.popleft() if self._chunks else b""

    def close(self) -> None:
        if not self._done_with:
            self._done_with = True
            self._connection.close()

    def release_conn(self) -> None:
        if not self._done_with:
            self._done_with = True
            if self._complete and self._reusable:
                self._give_back(self._connection)
            else:
                self._connection.close()

    # ------------------------------------------------------------------ reading

    def _receive(self) -> int:
        """Read once from the socket and parse what came; how many bytes came."""
        data = self._sock.recv(READ_SIZE)
        if not data:
            self._at_end_of_stream()
            return 0
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._upgraded = True  # 101 or CONNECT: what follows is not HTTP; the connection is not reused
        except httptools.HttpParserError as exc:
            raise ExchangeError(f"the receiver's answer is not valid HTTP/1.1 ({exc})") from None
        return len(data)

    def _at_end_of_stream(self) -> None:
        if not self._head_done:
            raise ExchangeError("the receiver closed the connection without answering")
        if self._complete or self._upgraded:
            return
        if self._ends_at_close():
            self._complete = True  # a body without length or chunks ends when the connection does
            return
        raise ExchangeError("the receiver closed the connection before the end of its answer")

    def _ends_at_close(self) -> bool:
        return (self.headers.get("Content-Length") is None
                and "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower()
                and self.status not in NO_BODY_STATUSES)

    # ------------------------------------------------------------------ httptools' callbacks

    def on_message_begin(self) -> None:
        if self._complete:
            self._reusable = False  # bytes after the answer: the connection is not left in a known state
        self._fields, self._reason = [], b""

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            return  # an interim answer (100 Continue, 103 Early Hints): the real one follows
        self.status, self.reason = status, self._reason.decode("latin-1").strip()
        self.headers = Headers(self._fields)
        self._head_done = True

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if self._head_done and not self._complete:
            self._complete = True
            self._reusable = self._parser.should_keep_alive()


def exchange(connection, head: bytes, body: bytes, give_back: Callable[[object], None]) -> Response:
    """Send the request on ``connection`` (connected, its socket's timeout set) and read the answer's
    head; the body is left to ``Response.read1``."""
    connection.sock.sendall(head + body)
    response = Response(connection, give_back)
    response.read_head()
    return response
