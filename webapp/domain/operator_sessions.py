"""Operator sessions kept in the database, so that ending one is final.

Flask's session is a signed cookie: clearing it at logout leaves a copy taken
earlier valid. Here the cookie carries only a random token (Flask-Login's user id
is that token); a request is logged in only while the token's row exists. Logout
deletes the row; a password change or removing the operator deletes all of that
operator's rows; a row older than WEBHOOKS_SESSION_HOURS no longer counts and is
purged at the next login. Only the token's SHA-256 is stored.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from flask import current_app
from sqlalchemy import delete, select

from ..extensions import db
from ..storage.models import OperatorSession, User, utcnow


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _oldest_valid() -> dt.datetime:
    return utcnow() - dt.timedelta(hours=current_app.config["WEBHOOKS_SESSION_HOURS"])


def start(user: User) -> str:
    """A new session for ``user``; returns the token to keep in the cookie."""
    token = secrets.token_urlsafe(32)
    db.session.execute(delete(OperatorSession).where(OperatorSession.created_at < _oldest_valid()))
    db.session.add(OperatorSession(token_hash=_hash(token), user_id=user.id, created_at=utcnow()))
    db.session.commit()
    return token


def find_user(token: str) -> User | None:
    """The operator whose live session this is, or None."""
    if not token or len(token) > 200:
        return None
    return db.session.scalar(
        select(User).join(OperatorSession, OperatorSession.user_id == User.id)
        .where(OperatorSession.token_hash == _hash(token), OperatorSession.created_at >= _oldest_valid()))


def end(token: str) -> None:
    db.session.execute(delete(OperatorSession).where(OperatorSession.token_hash == _hash(token)))
    db.session.commit()


def end_all(user_id: int) -> int:
    """End every session of one operator (the caller commits); returns how many there were."""
    return db.session.execute(delete(OperatorSession).where(OperatorSession.user_id == user_id)).rowcount
