"""One HTTP attempt: send a prepared webhook request and describe what happened.

Never raises for network trouble: every failure becomes an Outcome with a
precise error text, so one bad endpoint cannot crash a worker.
"""
from __future__ import annotations

import datetime as dt
import functools
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from ..models import utcnow
from ..urlguard import ForbiddenTarget, GuardedAdapter

REDACTED = "[redacted]"
SIGNATURE_PATTERN = re.compile(r"(Signature=)[0-9a-fA-F]+")
# Error texts never quote a header: its value may be a signature or a secret.
HEADER_ERROR = re.compile(r"invalid (?:leading whitespace, reserved character\(s\), or return character\(s\) in )?"
                          r"header (?:name|value)", re.IGNORECASE)
BASIC_CREDENTIALS = re.compile(r"(Basic )[A-Za-z0-9+/=]+")


@dataclass
class OutgoingRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    # Header names whose values are secret or signatures: redacted when stored.
    secret_headers: frozenset[str] = frozenset()


@dataclass
class Outcome:
    started_at: dt.datetime
    duration_ms: int
    request_method: str
    request_url: str
    request_headers: list[tuple[str, str]]
    request_body: str
    response_code: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: str = ""
    response_truncated: bool = False
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        """A 2xx answer, received whole within the timeout."""
        return self.error is None and self.response_code is not None and 200 <= self.response_code < 300


def new_session(pool_size: int, *, guard: bool) -> requests.Session:
    """A keep-alive session for one endpoint; ``guard`` refuses private peers."""
    session = requests.Session()
    session.trust_env = False  # never pick up proxies or .netrc from the environment
    adapter_class = GuardedAdapter if guard else HTTPAdapter
    adapter = adapter_class(pool_connections=4, pool_maxsize=max(pool_size, 1), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@functools.lru_cache(maxsize=4096)
def wire_url(url: str) -> str:
    """The URL exactly as requests sends it: IDNA host, path and query re-quoted
    (raw UTF-8 encoded, ``%7e`` -> ``~``, ``%2f`` -> ``%2F``). Signatures must cover this form."""
    return requests.Request("GET", url).prepare().url


def prepare(request: OutgoingRequest) -> requests.PreparedRequest:
    """A PreparedRequest built directly: the URL is prepared once per endpoint (cached)."""
    prepared = requests.PreparedRequest()
    prepared.method = request.method
    prepared.url = wire_url(request.url)
    prepared.headers = CaseInsensitiveDict(request.headers)
    prepared.headers["Content-Length"] = str(len(request.body))
    prepared.body = request.body
    prepared.hooks = {"response": []}
    return prepared


def redact(headers: list[tuple[str, str]], secret_names: frozenset[str]) -> list[tuple[str, str]]:
    redacted = []
    for name, value in headers:
        if name.lower() in secret_names:
            scheme, _, rest = value.partition(" ")
            if "Signature=" in rest:
                value = SIGNATURE_PATTERN.sub(lambda m: m.group(1) + REDACTED, value)
            else:
                value = f"{scheme} {REDACTED}" if rest else REDACTED
        redacted.append((name, value))
    return redacted


def send(
    session: requests.Session,
    request: OutgoingRequest,
    *,
    timeout: float,
    proxy_url: str | None,
    body_limit: int,
) -> Outcome:
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
    try:
        prepared = prepare(request)
        # The adapter is requests' transport; going straight to it skips the
        # Session's cookie jar and hooks, which webhook deliveries never use.
        response = session.get_adapter(prepared.url).send(
            prepared,
            timeout=timeout,
            stream=True,
            verify=True,
            proxies={"http": proxy_url, "https": proxy_url} if proxy_url else {},
        )
        outcome.response_code = response.status_code
        outcome.response_headers = list(response.headers.items())
        read_capped(response, outcome, body_limit, started=start, timeout=timeout)
        if outcome.error is None and not outcome.succeeded:
            outcome.error = describe_status(response)
    except Exception as exc:  # noqa: BLE001 - every failure is an outcome, never a crash
        outcome.error = describe_error(exc, timeout, request.url)
    finally:
        if response is not None:
            response.close()
        outcome.duration_ms = int((time.monotonic() - start) * 1000)
    return outcome


def read_capped(response: requests.Response, outcome: Outcome, limit: int, started: float, timeout: float) -> None:
    """Keep at most ``limit`` bytes; a body still arriving at the timeout fails the attempt."""
    deadline = started + timeout
    chunks, size = [], 0
    for chunk in response.iter_content(chunk_size=16 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            outcome.response_truncated = True
            break
        if time.monotonic() > deadline:
            outcome.response_truncated = True
            outcome.error = f"timeout: response body still arriving after {timeout:g} s"
            break
    body = b"".join(chunks)[:limit]
    outcome.response_body = body.decode(response.encoding or "utf-8", errors="replace")


def describe_status(response: requests.Response) -> str:
    """Why a response that arrived still counts as unsuccessful."""
    text = f"receiver answered {response.status_code} {response.reason or ''}".rstrip()
    if 300 <= response.status_code < 400:
        location = response.headers.get("Location", "")
        return f"{text}; redirects are not followed" + (f" (Location: {location[:200]})" if location else "")
    retry_after = response.headers.get("Retry-After")
    return f"{text} (Retry-After: {retry_after[:50]})" if retry_after else text


def describe_error(exc: BaseException, timeout: float, url: str = "") -> str:
    """A short, exact description of why an attempt got no usable response."""
    chain = list(_causes(exc))
    innermost = chain[-1]
    for cause in chain:
        if isinstance(cause, ForbiddenTarget):
            return str(cause)
        if isinstance(cause, ValueError) and HEADER_ERROR.search(str(cause)):
            return ("invalid request header: a header name or value holds a line break or another character "
                    "HTTP does not allow (the header is not shown: it may carry a signature or a secret)")
        if isinstance(cause, socket.gaierror):
            host = urlsplit(url).hostname or "the host"
            return f"DNS lookup failed for {host}: {cause.strerror or cause}"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS error: certificate verify failed: {cause.verify_message or cause.reason}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"timeout: could not connect within {timeout:g} s"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"timeout: no response within {timeout:g} s"
    if isinstance(exc, requests.exceptions.ProxyError):
        return f"proxy error: {_message(innermost)}"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return f"connection broken while reading the response: {_message(innermost)}"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"connection error: {_message(innermost)}"
    return f"{type(exc).__name__}: {_message(exc)}"


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
    text = str(exc).strip() or type(exc).__name__
    text = SIGNATURE_PATTERN.sub(lambda m: m.group(1) + REDACTED, text.splitlines()[-1])
    return BASIC_CREDENTIALS.sub(lambda m: m.group(1) + REDACTED, text)[:300]
