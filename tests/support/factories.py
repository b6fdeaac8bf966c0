"""Build rows for tests the way the product stores them, and read them back as workers change them."""
from __future__ import annotations

from tests.support.waiting import wait_until
from webapp.extensions import db
from webapp.storage.crypto import secret_box
from webapp.storage.models import Attempt, Endpoint, Message, PendingMessage
from webapp.storage.statuses import DONE, FAILED, RESENT


def make_endpoint(url: str, *, actions=("*",), secret: str | None = None, **settings) -> Endpoint:
    endpoint = Endpoint(url=url, **settings)
    endpoint.actions = list(actions)
    if secret is not None:
        endpoint.auth_secret_encrypted = secret_box().encrypt(secret)
    db.session.add(endpoint)
    db.session.commit()
    return endpoint


def due_for_delivery(message: Message) -> None:
    """The pending row that delivery reads for a waiting message built by hand (emit and resend write one)."""
    db.session.add(PendingMessage(message_id=message.id, endpoint_id=message.endpoint_id,
                                  next_attempt_at=message.next_attempt_at, is_retry=message.status == RESENT))
    db.session.commit()


def reload_message(message_id: int) -> Message:
    db.session.expire_all()
    message = db.session.get(Message, message_id)
    db.session.rollback()  # end the read transaction so SQLite writers are never blocked
    return message


def final(message_id: int, timeout: float = 20.0) -> Message:
    """Wait (poll with a deadline) until a worker has brought the message to done or failed."""
    return wait_until(
        lambda: (m := reload_message(message_id)) and m.status in (DONE, FAILED) and m,
        timeout=timeout, message=f"message {message_id} never reached a final status",
    )


def attempts_of(message_id: int) -> list[Attempt]:
    rows = db.session.scalars(db.select(Attempt).where(Attempt.message_id == message_id).order_by(Attempt.number)).all()
    db.session.rollback()
    return list(rows)
