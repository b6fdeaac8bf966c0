"""One HTTP attempt: send a prepared webhook request and describe what happened.

Never raises for network trouble: every failure becomes an Outcome with a
precise error text, so one bad endpoint cannot crash a worker.
"""
from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass, field

import requests
from requests.adapters import HTTPAdapter

from ..models import utcnow
from ..urlguard import ForbiddenTarget, GuardedAdapter

REDACTED = "[redacted]"
SIGNATURE_PATTERN = re.compile(r"(Signature=)[0-9a-fA-F]+")


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
        return self.response_code is not None and 200 <= self.response_code < 300


def new_session(pool_size: int, *, guard: bool) -> requests.Session:
    """A keep-alive session for one endpoint; ``guard`` refuses private peers."""
    session = requests.Session()
    session.trust_env = False  # never pick up proxies or .netrc from the environment
    adapter_class = GuardedAdapter if guard else HTTPAdapter
    adapter = adapter_class(pool_connections=4, pool_maxsize=max(pool_size, 1), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


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
        prepared = requests.Request(
            request.method, request.url, headers=dict(request.headers), data=request.body
        ).prepare()
        response = session.send(
            prepared,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
            proxies={"http": proxy_url, "https": proxy_url} if proxy_url else {},
        )
        outcome.response_code = response.status_code
        outcome.response_headers = list(response.headers.items())
        read_capped(response, outcome, body_limit, deadline=start + timeout)
    except Exception as exc:  # noqa: BLE001 - every failure is an outcome, never a crash
        outcome.error = describe_error(exc, timeout)
    finally:
        if response is not None:
            response.close()
        outcome.duration_ms = int((time.monotonic() - start) * 1000)
    return outcome


def read_capped(response: requests.Response, outcome: Outcome, limit: int, deadline: float) -> None:
    """Keep at most ``limit`` bytes, and stop reading a body that trickles past the timeout."""
    chunks, size = [], 0
    for chunk in response.iter_content(chunk_size=16 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit or time.monotonic() > deadline:
            outcome.response_truncated = True
            break
    body = b"".join(chunks)[:limit]
    outcome.response_body = body.decode(response.encoding or "utf-8", errors="replace")


def describe_error(exc: BaseException, timeout: float) -> str:
    """A short, exact description of why an attempt got no usable response."""
    chain = list(_causes(exc))
    for cause in chain:
        if isinstance(cause, ForbiddenTarget):
            return str(cause)
    text = " ".join(str(c) for c in chain)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"timeout: could not connect within {timeout:g} s"
    if isinstance(exc, (requests.exceptions.ReadTimeout, requests.exceptions.Timeout)):
        return f"timeout: no response within {timeout:g} s"
    if isinstance(exc, requests.exceptions.ProxyError):
        return f"proxy error: {_last_line(text)}"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS error: {_last_line(text)}"
    if "Name or service not known" in text or "NameResolutionError" in text or "nodename nor servname" in text \
            or "Temporary failure in name resolution" in text or "No address associated" in text:
        return f"DNS lookup failed: {_last_line(text)}"
    if "Connection refused" in text:
        return "connection refused"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return f"connection broken while reading the response: {_last_line(text)}"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"connection error: {_last_line(text)}"
    return f"{type(exc).__name__}: {exc}"


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


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1][:300] if text.strip() else "unknown"
