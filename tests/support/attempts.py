"""One attempt straight through the product's sender, no worker: for tests of what a receiver can do to it."""
from __future__ import annotations

import time

from webapp.delivery.names import Resolver, system_resolver
from webapp.delivery.outcome import Outcome
from webapp.delivery.send import send
from webapp.delivery.transport import Transport
from webapp.signing.request import OutgoingRequest


def attempt(url: str, timeout: float = 1.0, limit: int = 1000, guard: bool = False, proxy_url: str | None = None,
            resolver: Resolver = system_resolver) -> Outcome:
    transport = Transport(guard=guard, resolver=resolver)
    request = OutgoingRequest("POST", url, [("Content-Type", "application/json")], b"{}")
    try:
        return send(transport, request, timeout=timeout, proxy_url=proxy_url, body_limit=limit)
    finally:
        transport.close()


def timed_attempt(url: str, timeout: float, **kwargs) -> tuple[Outcome, float]:
    """The outcome and the wall-clock seconds the call took (what a worker thread spends on it)."""
    started = time.monotonic()
    outcome = attempt(url, timeout, **kwargs)
    return outcome, time.monotonic() - started
