"""Operator accounts: passwords hashed with scrypt (werkzeug; the cost is WEBHOOKS_PASSWORD_HASH).

A password change or removing an operator ends every session of that operator.
"""
from __future__ import annotations

import functools
import secrets

from flask import current_app
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import InvalidInput
from ..extensions import db
from ..storage.models import User
from ..text_rules import control_character_problem
from . import operator_sessions

MIN_PASSWORD_LENGTH = 8


def create_user(email: str, password: str) -> User:
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 255 or control_character_problem(email):
        raise InvalidInput("email", "must be an e-mail address")
    check_password(password)
    if db.session.scalar(select(User).where(User.email == email)):
        raise InvalidInput("email", f"an operator {email} already exists")
    user = User(email=email, password_hash=hash_password(password))
    db.session.add(user)
    db.session.commit()
    return user


def hash_password(password: str) -> str:
    return generate_password_hash(password, current_app.config["WEBHOOKS_PASSWORD_HASH"])


@functools.cache
def stand_in_hash(method: str) -> str:
    """Checked against when there is no such operator, so the answer takes as long either way."""
    return generate_password_hash(secrets.token_hex(16), method)


def verify(email: str, password: str) -> User | None:
    email = (email or "").strip().lower()
    if control_character_problem(email) or len(email) > 255:
        email = ""  # no such operator; the query below still runs, so the answer takes as long
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        check_password_hash(stand_in_hash(current_app.config["WEBHOOKS_PASSWORD_HASH"]), password or "")
        return None
    return user if check_password_hash(user.password_hash, password or "") else None


def count() -> int:
    return db.session.scalar(select(func.count()).select_from(User)) or 0


def check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")


def find(email: str) -> User:
    user = db.session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if user is None:
        raise InvalidInput("email", f"no operator {email}")
    return user


def set_password(email: str, password: str) -> int:
    """Change an operator's password and end their sessions; returns how many were ended."""
    check_password(password)
    user = find(email)
    user.password_hash = hash_password(password)
    ended = operator_sessions.end_all(user.id)
    db.session.commit()
    return ended


def remove(email: str) -> int:
    """Remove an operator and end their sessions; returns how many were ended."""
    user = find(email)
    ended = operator_sessions.end_all(user.id)
    db.session.delete(user)
    db.session.commit()
    return ended


def all_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.email)))


def change_own_password(user_id: int, current: str, new: str) -> int:
    """An operator changing their own password: the current one must be right. Ends every session of
    theirs (the caller starts a fresh one for the browser that asked); returns how many were ended."""
    user = db.session.get(User, user_id)
    if user is None or not check_password_hash(user.password_hash, current or ""):
        raise InvalidInput("current_password", "is not your current password")
    check_password(new)
    user.password_hash = hash_password(new)
    ended = operator_sessions.end_all(user.id)
    db.session.commit()
    return ended


def check_removable(acting_user_id: int, user_id: int) -> User:
    """Never oneself (nobody locks themselves out by a slip), never the last operator."""
    if user_id == acting_user_id:
        raise InvalidInput("user", "you cannot remove yourself: ask another operator to do it")
    user = db.session.get(User, user_id)
    if user is None:
        raise InvalidInput("user", "no such operator (already removed?)")
    if count() <= 1:
        raise InvalidInput("user", "the last operator cannot be removed")
    return user


def remove_by(acting_user_id: int, user_id: int) -> tuple[str, int]:
    """One operator removing another; returns (their e-mail, how many of their sessions ended)."""
    email = check_removable(acting_user_id, user_id).email
    return email, remove(email)
