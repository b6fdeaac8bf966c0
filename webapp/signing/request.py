"""The request a signer works on, and what it may read of the message: plain data, no delivery code.

Signers (basic, sigv4, s3, standard_webhooks) take an ``OutgoingRequest`` and give back
a new one with their headers added; delivery builds the first one and sends the last.
"""
from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Protocol

import requests


@dataclass
class OutgoingRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    # Header names whose values are secret or signatures: redacted when stored.
    secret_headers: frozenset[str] = frozenset()

    def adding(self, headers: list[tuple[str, str]], secret: set[str] | frozenset[str]) -> OutgoingRequest:
        """The same request with ``headers`` appended, ``secret`` (lower-case names) redacted when stored."""
        return OutgoingRequest(self.method, self.url, self.headers + headers, self.body,
                               secret_headers=self.secret_headers | frozenset(secret))


@dataclass(frozen=True)
class MessageContent:
    """What a delivery needs of a message and its event; loaded in one query per batch."""

    message_id: int
    attempt_number: int
    event_id: str
    action: str
    customer: str
    created_at: dt.datetime
    data_json: str
    queued_at: dt.datetime | None = None  # the message's own creation (a resend's is later than its event's)


class SigningSettings(Protocol):
    """What signers read of an endpoint's settings (delivery's ``Target``)."""

    url: str
    username: str
    secret: str
    region: str
    service: str
    access_key_id: str
    algo_prefix: str
    vendor_key: str
    filename_format: str
    file_extension: str
    previous_secret: str
    previous_secret_until: dt.datetime | None


@functools.lru_cache(maxsize=4096)
def wire_url(url: str) -> str:
    """The URL exactly as requests sends it: IDNA host, path and query re-quoted
    (raw UTF-8 encoded, ``%7e`` -> ``~``, ``%2f`` -> ``%2F``). Signatures must cover this form."""
    return requests.Request("GET", url).prepare().url
