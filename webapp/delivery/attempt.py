"""One attempt of one message: build the request (body, headers, signature), then send it.

Deliveries and the Test button both go through ``make_attempt``.
"""
from __future__ import annotations

import logging

from ..signing.request import MessageContent
from ..storage.models import utcnow
from .outcome import Outcome, not_sent
from .outgoing import build_request
from .send import build_failure, send
from .target import Target
from .transport import Transport

log = logging.getLogger(__name__)


def make_attempt(transport: Transport, target: Target, content: MessageContent, body_limit: int) -> Outcome:
    now = utcnow()
    try:
        request = build_request(target, content, now)
    except Exception as exc:  # noqa: BLE001 - a message that cannot be built is a failed attempt
        log.warning("could not build message %s: %s", content.message_id, exc)
        return not_sent(target.url, build_failure(exc), now)
    return send(transport, request, timeout=target.timeout, proxy_url=target.proxy_url, body_limit=body_limit)
