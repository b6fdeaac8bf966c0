"""Build the HTTP request for one attempt of one message: body, headers, authentication."""
from __future__ import annotations

import datetime as dt

from ..signing.request import MessageContent, OutgoingRequest
from .authenticate import authenticate
from .payload import CONTENT_TYPES, envelope, render_body
from .target import Target

USER_AGENT = "Webhooks/0.1 (+self-hosted loyalty webhooks)"


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
    if target.headers_problem:
        raise ValueError(f"a secret custom header: {target.headers_problem}")
    # The endpoint's own headers go before signing: AWS signatures cover them too.
    headers += [(name, value) for name, value, _ in target.custom_headers]
    secret = frozenset(name.lower() for name, _, is_secret in target.custom_headers if is_secret)
    request = OutgoingRequest(method="POST", url=target.url, headers=headers, body=body, secret_headers=secret)
    return authenticate(target, request, content, now)
