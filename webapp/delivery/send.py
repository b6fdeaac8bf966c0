"""One HTTP attempt: send a prepared webhook request and describe what happened.

Never raises for network trouble: every failure becomes an Outcome with a
precise error text, so one bad endpoint cannot crash a worker. The attempt
never outlives its endpoint's timeout (see ``deadline``): from the start of
connecting to the last byte of the response.
"""
from __future__ import annotations

import codecs
import re
import socket
import ssl
import time
from urllib.parse import urlsplit

from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
    ProxyError,
    ReadTimeoutError,
)
from urllib3.exceptions import HTTPError as Urllib3Error

from ..signing.request import OutgoingRequest, wire_url
from ..storage.models import utcnow
from . import deadline
from .deadline import DeadlineExceeded
from .exchange import ExchangeError
from .outcome import Outcome
from .transport import Transport
from .urlguard import ForbiddenTarget

REDACTED = "[redacted]"
SIGNATURE_PATTERN = re.compile(r"(Signature=)[0-9a-fA-F]+")
# Standard Webhooks: each signature becomes "v1,[redacted]", so the log still shows how many were sent.
VERSIONED_SIGNATURES = re.compile(r"(v1,)[A-Za-z0-9+/=]+(?: v1,[A-Za-z0-9+/=]+)*")
VERSIONED_SIGNATURE = re.compile(r"(v1,)[A-Za-z0-9+/=]+")
# Schemes kept in front of a redacted value ("Basic [redacted]"); anything else is redacted whole.
KEPT_SCHEMES = frozenset({"basic", "bearer"})
CHARSET = re.compile(r"charset=\"?([\w.:-]+)", re.IGNORECASE)
# Error texts never quote a header: its value may be a signature or a secret.
HEADER_ERROR = re.compile(r"invalid (?:leading whitespace, reserved character\(s\), or return character\(s\) in )?"
                          r"header (?:name|value)", re.IGNORECASE)
BASIC_CREDENTIALS = re.compile(r"(Basic )[A-Za-z0-9+/=]+")
READ_CHUNK = 64 * 1024
# A body past this is not read to the end: a receiver that streams forever
# cannot keep a worker busy, and no webhook answer needs more.
MAX_RESPONSE_BYTES = 1024 * 1024


def redact(headers: list[tuple[str, str]], secret_names: frozenset[str]) -> list[tuple[str, str]]:
    redacted = []
    for name, value in headers:
        if name.lower() in secret_names:
            scheme, _, rest = value.partition(" ")
            if "Signature=" in rest:
                value = SIGNATURE_PATTERN.sub(lambda m: m.group(1) + REDACTED, value)
            elif VERSIONED_SIGNATURES.fullmatch(value):
                value = VERSIONED_SIGNATURE.sub(lambda m: m.group(1) + REDACTED, value)
            else:
                value = f"{scheme} {REDACTED}" if rest and scheme.lower() in KEPT_SCHEMES else REDACTED
        redacted.append((name, value))
    return redacted


def send(transport: Transport, request: OutgoingRequest, *, timeout: float, proxy_url: str | None,
         body_limit: int) -> Outcome:
    outcome = Outcome(
        started_at=utcnow(),
        duration_ms=0,
        request_method=request.method,
        request_url=request.url,
        request_headers=redact(request.headers, request.secret_headers),
        request_body=request.body.decode("utf-8", errors="replace"),
    )
    start = time.monotonic()
    response = None
    complete = False
    with deadline.running(timeout) as attempt:
        try:
            left = attempt.remaining()
            response = transport.urlopen(request.method, wire_url(request.url), body=request.body,
                                         headers=dict(request.headers), timeout=left, proxy_url=proxy_url)
            outcome.response_code = response.status
            outcome.response_headers = list(response.headers.items())
            complete = read_body(response, outcome, body_limit)
            if attempt.expired:  # the deadline's shutdown looked like the end of a body without a length
                outcome.response_truncated = True
                raise DeadlineExceeded()
            if outcome.error is None and not outcome.succeeded:
                outcome.error = describe_status(response.status, response.reason, response.headers)
        except Exception as exc:  # noqa: BLE001 - every failure is an outcome, never a crash
            outcome.error = (timeout_error(timeout) if attempt.expired or timed_out(exc)
                             else describe_error(exc, request))
        finally:
            if response is not None:
                release(response, reuse=complete and not attempt.expired)
    outcome.duration_ms = int((time.monotonic() - start) * 1000)
    return outcome


def read_body(response, outcome: Outcome, limit: int) -> bool:
    """Read the whole body, keeping at most ``limit`` bytes; True when it was read to its end.

    What arrived is kept even when the read fails (a deadline in the middle of a body).
    """
    chunks, kept, total, complete = [], 0, 0, False
    try:
        while True:
            chunk = response.read1(READ_CHUNK)
            if not chunk:
                complete = True
                break
            total += len(chunk)
            if kept < limit:
                chunks.append(chunk[: limit - kept])
                kept += len(chunks[-1])
            if total > MAX_RESPONSE_BYTES:
                outcome.error = f"response body larger than {MAX_RESPONSE_BYTES // 2**20} MiB: not read to the end"
                break
    finally:
        outcome.response_truncated = total > kept or not complete
        outcome.response_body = as_text(b"".join(chunks), response.headers.get("Content-Type", ""))
    return complete


def as_text(body: bytes, content_type: str) -> str:
    """The body decoded by the charset its Content-Type names (UTF-8 when none or unknown)."""
    found = CHARSET.search(content_type)
    try:
        codec = codecs.lookup(found.group(1)).name if found else "utf-8"
    except LookupError:
        codec = "utf-8"
    return storable(body.decode(codec, errors="replace"))


def storable(text: str) -> str:
    """A receiver's text with each NUL shown as U+FFFD, as undecodable bytes are: PostgreSQL's text
    cannot hold NUL, and one in a body or reason phrase made the whole outcome unwritable."""
    return text.replace("\x00", "\ufffd")


def release(response, *, reuse: bool) -> None:
    """Back to the pool when the exchange was complete; otherwise the connection is closed."""
    if not reuse:
        response.close()
    response.release_conn()


def timed_out(exc: BaseException) -> bool:
    """Socket timeouts are set to the attempt's time left, so one firing means the deadline came
    (it may do so a hair before the watchdog does)."""
    return any(isinstance(cause, (DeadlineExceeded, TimeoutError, ReadTimeoutError))
               # urllib3's failed connections are ConnectTimeoutErrors too (a quirk it keeps till 3.0)
               or (isinstance(cause, ConnectTimeoutError) and not isinstance(cause, NewConnectionError))
               for cause in _causes(exc))


def timeout_error(timeout: float) -> str:
    return f"timeout: response not complete within {timeout:g} s"


def describe_status(status: int, reason: str | None, headers) -> str:
    """Why a response that arrived still counts as unsuccessful."""
    text = f"receiver answered {status} {storable(reason or '')}".rstrip()
    if 300 <= status < 400:
        location = headers.get("Location", "")
        return f"{text}; redirects are not followed" + (f" (Location: {location[:200]})" if location else "")
    retry_after = headers.get("Retry-After")
    return f"{text} (Retry-After: {retry_after[:50]})" if retry_after else text


def describe_error(exc: BaseException, request: OutgoingRequest) -> str:
    """A short, exact description of why an attempt got no usable response.

    Never quotes what we sent: texts of unknown errors have the request's
    header values (signatures, passwords) cut out.
    """
    chain = list(_causes(exc))
    innermost = chain[-1]
    for cause in chain:
        if isinstance(cause, ForbiddenTarget):
            return str(cause)
        if isinstance(cause, (socket.gaierror, NameResolutionError)):
            host = urlsplit(request.url).hostname or "the host"
            reason = cause.strerror if isinstance(cause, socket.gaierror) else _gai_reason(cause)
            return f"DNS lookup failed for {host}: {reason}"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS error: certificate verify failed: {cause.verify_message or cause.reason}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ExchangeError):
            return f"connection error: {cause}"
        if isinstance(cause, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return f"connection error: {(cause.strerror or type(cause).__name__).lower()}"
        if isinstance(cause, ValueError) and HEADER_ERROR.search(str(cause)):
            return ("invalid request header: a header name or value holds a line break or another character "
                    "HTTP does not allow (the header is not shown: it may carry a signature or a secret)")
    if isinstance(exc, ProxyError):
        return f"proxy error: {without_values(_message(innermost), request)}"
    if isinstance(exc, Urllib3Error):
        return f"connection error: {without_values(_message(innermost), request)}"
    return f"{type(exc).__name__}: {without_values(_message(exc), request)}"


def _gai_reason(error: NameResolutionError) -> str:
    inner = error.__cause__
    if isinstance(inner, socket.gaierror) and inner.strerror:
        return inner.strerror
    return _message(inner or error)


def without_values(text: str, request: OutgoingRequest) -> str:
    for _, value in request.headers:
        if len(value) >= 8 and value in text:
            text = text.replace(value, REDACTED)
    return text


def _causes(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        for arg in getattr(exc, "args", ()):
            if isinstance(arg, BaseException):
                yield from _causes(arg)
        reason = getattr(exc, "reason", None)
        if isinstance(reason, BaseException):
            yield from _causes(reason)
        exc = exc.__cause__ or exc.__context__


def _message(exc: BaseException) -> str:
    """The last line of an exception's text, signatures and Basic credentials cut out."""
    text = str(exc).strip() or type(exc).__name__
    text = SIGNATURE_PATTERN.sub(lambda m: m.group(1) + REDACTED, text.splitlines()[-1])
    return BASIC_CREDENTIALS.sub(lambda m: m.group(1) + REDACTED, text)[:300]


def build_failure(exc: BaseException) -> str:
    """Why a message could not be built (an undecryptable secret, a filename format), safe to store."""
    return f"could not build the request: {_message(exc)}"
