"""Build the HTTP request for one attempt of one message: body, headers, authentication."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .authenticate import authenticate
from .payload import CONTENT_TYPES, envelope, render_body
from .send import OutgoingRequest
from .target import Target

USER_AGENT = "Webhooks/0.1 (+self-hosted loyalty webhooks)"


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


def build_request(target: Target, content: MessageContent, now: dt.datetime) -> OutgoingRequest:
    body = render_body(
        target.content_type,
        envelope(content.event_id, content.action, content.customer, content.created_at, content.data_json),
    )
    headers = [
        ("Content-Type", CONTENT_TYPES[target.content_type]),
        ("User-Agent", USER_AGENT),
        ("Webhook-Id", content.event_id),
        ("Webhook-Timestamp", str(int(now.replace(tzinfo=dt.timezone.utc).timestamp()))),
    ]
    request = OutgoingRequest(method="POST", url=target.url, headers=headers, body=body)
    return authenticate(target, request, content, now)
