"""Build rows for tests the way the product stores them."""
from __future__ import annotations

from webapp.crypto import secret_box
from webapp.extensions import db
from webapp.models import Endpoint, Message


def make_endpoint(url: str, *, actions=("*",), secret: str | None = None, **settings) -> Endpoint:
    endpoint = Endpoint(url=url, **settings)
    endpoint.actions = list(actions)
    if secret is not None:
        endpoint.auth_secret_encrypted = secret_box().encrypt(secret)
    db.session.add(endpoint)
    db.session.commit()
    return endpoint


def reload_message(message_id: int) -> Message:
    db.session.expire_all()
    message = db.session.get(Message, message_id)
    db.session.rollback()  # end the read transaction so SQLite writers are never blocked
    return message
