"""Add the endpoint's authentication to an outgoing request, by its type's signer (signing.auth_types).

The Test button and every real delivery go through ``authenticate``: one signing path.
"""
from __future__ import annotations

import datetime as dt

from ..signing.auth_types import TYPES
from ..signing.request import MessageContent, OutgoingRequest
from .target import Target


def authenticate(target: Target, request: OutgoingRequest, content: MessageContent, now: dt.datetime) -> OutgoingRequest:
    kind = TYPES.get(target.auth_type)
    if kind is None:
        raise ValueError(f"unknown authentication type {target.auth_type!r}")
    if kind.sign is None:
        return request
    if target.secret_problem:
        raise ValueError(target.secret_problem)
    return kind.sign(target, request, content, now)
