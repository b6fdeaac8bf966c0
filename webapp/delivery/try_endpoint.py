"""The Test button: one sample message, sent right now with the saved settings.

It goes through the same attempt path as real deliveries (``make_attempt``),
is recorded in the log marked as a test, and is never retried.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import insert

from ..extensions import db
from ..signing.request import MessageContent
from ..storage.models import (
    Attempt,
    Endpoint,
    Event,
    Message,
    new_event_id,
    response_class,
    utcnow,
)
from ..storage.statuses import after_test
from .attempt import make_attempt
from .outcome import Outcome
from .records import attempt_row
from .target import Target
from .transport import Transport

SAMPLE_CUSTOMER = "test-customer"


@dataclass(frozen=True)
class TestResult:
    message: Message
    outcome: Outcome


def sample_data(action: str) -> dict:
    return {"test": True, "note": f"Sample '{action}' message sent with the Test button"}


def send_test(endpoint: Endpoint, action: str) -> TestResult:
    config = current_app.config
    now = utcnow()
    event = Event(id=new_event_id(), action=action, customer=SAMPLE_CUSTOMER, created_at=now, is_test=True)
    event.data_json = current_app.json.dumps(sample_data(action))
    message = Message(
        event=event, endpoint_id=endpoint.id, action=action, customer=SAMPLE_CUSTOMER,
        status=after_test(succeeded=False), attempts=1, created_at=now, is_test=True,  # until its attempt says
    )
    db.session.add_all([event, message])
    db.session.flush()  # the message id goes into S3 keys and the log
    target = Target.from_endpoint(endpoint, config["WEBHOOKS_PROXY_URL"])
    content = MessageContent(message.id, 1, event.id, action, SAMPLE_CUSTOMER, now, event.data_json)
    transport = Transport.from_config(config, pool_size=1)
    try:
        outcome = make_attempt(transport, target, content, config["WEBHOOKS_RESPONSE_BODY_LIMIT"])
    finally:
        transport.close()
    message.status = after_test(outcome.succeeded)
    message.response_code = outcome.response_code
    message.response_class = response_class(outcome.response_code)
    message.last_attempt_at = outcome.started_at
    db.session.execute(insert(Attempt.__table__), [attempt_row(message.id, 1, outcome)])
    db.session.commit()
    return TestResult(message=message, outcome=outcome)
