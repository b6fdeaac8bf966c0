"""Standard Webhooks signatures (https://www.standardwebhooks.com): HMAC-SHA256 of "id.timestamp.body".

Headers ``webhook-id`` (the event id, stable across retries and resends), ``webhook-timestamp``
(Unix seconds of this attempt) and ``webhook-signature`` (``v1,<base64>``, several
space-separated, newest first, while an old secret is still valid after a rotation).
The id and timestamp signed are read from the request's own headers, so what is signed is
what is sent. Secrets are ``whsec_`` + base64 of 24 to 64 random bytes; the key is those bytes.

Hand-written rather than the ``standardwebhooks`` package's ``Webhook.sign``: that takes the
body as text and the timestamp as a datetime, and we sign bytes and the header as sent; its
verifier (and svix's) checks every request we send, in the tests.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import secrets

from .request import MessageContent, OutgoingRequest, SigningSettings

PREFIX = "whsec_"
MIN_KEY_BYTES, MAX_KEY_BYTES, NEW_KEY_BYTES = 24, 64, 32
ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER = "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(NEW_KEY_BYTES)).decode("ascii")


def key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; ValueError saying what is wrong with it."""
    if not secret.startswith(PREFIX):
        raise ValueError(f"must start with {PREFIX} (a Standard Webhooks secret)")
    try:
        raw = base64.b64decode(secret[len(PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"must be {PREFIX} followed by standard base64 (A-Z, a-z, 0-9, +, /, = padding)") from None
    if not MIN_KEY_BYTES <= len(raw) <= MAX_KEY_BYTES:
        raise ValueError(f"must hold {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes after {PREFIX} (it holds {len(raw)})")
    return raw


def check_secret(secret: str) -> None:
    key(secret)


def fingerprint(secret: str) -> str:
    """Tells secrets apart without revealing them: the first 8 bytes of SHA-256 of the key, in hex."""
    digest = hashlib.sha256(key(secret)).hexdigest()[:16]
    return ":".join(digest[i:i + 4] for i in range(0, 16, 4))


def signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key(secret), signed, hashlib.sha256).digest()).decode("ascii")


def valid_secrets(target: SigningSettings, now: dt.datetime) -> list[str]:
    """The current secret, then the previous one while its rotation window lasts."""
    found = [target.secret]
    if target.previous_secret and target.previous_secret_until and now < target.previous_secret_until:
        found.append(target.previous_secret)
    return found


def with_signature(target: SigningSettings, request: OutgoingRequest, content: MessageContent,
                   now: dt.datetime) -> OutgoingRequest:
    headers = {name.lower(): value for name, value in request.headers}
    msg_id, timestamp = headers[ID_HEADER.lower()], headers[TIMESTAMP_HEADER.lower()]
    signatures = " ".join(signature(secret, msg_id, timestamp, request.body)
                          for secret in valid_secrets(target, now))
    return request.adding([(SIGNATURE_HEADER, signatures)], {SIGNATURE_HEADER.lower()})
