"""API tokens: random, shown once, stored as a SHA-256 hash."""
from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select

from ..errors import InvalidInput
from ..extensions import db
from ..storage.models import ApiToken, utcnow
from ..text_rules import control_character_problem

PREFIX = "whk_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(name: str) -> str:
    if not name.strip() or len(name) > 100:
        raise InvalidInput("name", "must be 1 to 100 characters")
    if problem := control_character_problem(name):
        raise InvalidInput("name", problem)
    token = PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(name=name, token_hash=hash_token(token)))
    db.session.commit()
    return token


def find_token(token: str) -> ApiToken | None:
    if not token or len(token) > 200:
        return None
    wanted = hash_token(token)
    found = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == wanted))
    if found is None or not hmac.compare_digest(found.token_hash, wanted):
        return None
    now = utcnow()
    if found.last_used_at is None or (now - found.last_used_at).total_seconds() > 60:
        found.last_used_at = now  # at most one write a minute per token
        db.session.commit()
    return found
