"""HTTP Basic authentication header (RFC 7617, UTF-8 credentials)."""
from __future__ import annotations

import base64
import datetime as dt

from .request import MessageContent, OutgoingRequest, SigningSettings


def authorization(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode("utf-8")).decode("ascii")
    return f"Basic {token}"


def with_basic(target: SigningSettings, request: OutgoingRequest, content: MessageContent,
               now: dt.datetime) -> OutgoingRequest:
    return request.adding([("Authorization", authorization(target.username, target.secret))], {"authorization"})
