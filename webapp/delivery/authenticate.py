"""Add the endpoint's authentication to an outgoing request: none, basic, aws, aws-s3."""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from ..signing import basic
from .send import OutgoingRequest

if TYPE_CHECKING:
    from .outgoing import MessageContent
    from .target import Target

AUTH_TYPES = ("none", "basic", "aws", "aws-s3")


def authenticate(target: "Target", request: OutgoingRequest, content: "MessageContent", now: dt.datetime) -> OutgoingRequest:
    if target.auth_type == "none":
        return request
    if target.auth_type == "basic":
        header = ("Authorization", basic.authorization(target.username, target.secret))
        return OutgoingRequest(
            request.method, request.url, request.headers + [header], request.body,
            secret_headers=frozenset({"authorization"}),
        )
    raise NotImplementedError(f"authentication type {target.auth_type!r} is not available yet")
