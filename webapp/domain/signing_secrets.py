"""Standard Webhooks secrets: generate, rotate with a window in which the old one stays valid, fingerprint.

During the window every message carries two signatures, the new secret's first; after it only
the new one (signing.standard_webhooks decides per attempt, from ``auth_previous_secret_until``).
A second rotation inside a window keeps only the secret it replaces as the old one.
"""
from __future__ import annotations

import datetime as dt

from ..errors import InvalidInput
from ..signing import standard_webhooks
from ..signing.auth_types import auth_type
from ..storage.crypto import secret_box
from ..storage.models import Endpoint, utcnow

DEFAULT_WINDOW_HOURS = 24
MAX_WINDOW_HOURS = 24 * 30


def rotate(endpoint: Endpoint, new_secret: str | None, window_hours: int) -> str:
    """Make ``new_secret`` (or a generated one) the signing secret, the old one valid ``window_hours`` more.
    Returns the new secret, to be shown once. The caller commits."""
    if not auth_type(endpoint.auth_type).rotates or not endpoint.has_secret:
        raise InvalidInput("auth_type", "only an endpoint with a stored Standard Webhooks secret can rotate it")
    if isinstance(window_hours, bool) or not isinstance(window_hours, int) \
            or not 0 <= window_hours <= MAX_WINDOW_HOURS:
        raise InvalidInput("window_hours", f"must be a whole number of hours from 0 to {MAX_WINDOW_HOURS}")
    secret = new_secret or standard_webhooks.new_secret()
    try:
        standard_webhooks.check_secret(secret)
    except ValueError as exc:
        raise InvalidInput("secret", str(exc)) from None
    now = utcnow()
    endpoint.auth_previous_secret_encrypted = endpoint.auth_secret_encrypted if window_hours else None
    endpoint.auth_previous_secret_until = now + dt.timedelta(hours=window_hours) if window_hours else None
    endpoint.auth_secret_encrypted = secret_box().encrypt(secret)
    endpoint.updated_at = now
    return secret


def window_end(endpoint: Endpoint) -> dt.datetime | None:
    """Until when the previous secret is still signed with; None when no window is running."""
    until = endpoint.auth_previous_secret_until
    return until if endpoint.auth_previous_secret_encrypted and until and until > utcnow() else None


def fingerprints(endpoint: Endpoint) -> list[str]:
    """Fingerprints of the secrets messages are signed with now, newest first (never the secrets)."""
    tokens = [endpoint.auth_secret_encrypted] + ([endpoint.auth_previous_secret_encrypted]
                                                 if window_end(endpoint) else [])
    found = []
    for token in tokens:
        try:
            found.append(standard_webhooks.fingerprint(secret_box().decrypt(token)))
        except ValueError:
            found.append("unreadable (encrypted with a key that is no longer configured)")
    return found
