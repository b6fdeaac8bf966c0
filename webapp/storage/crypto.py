"""Encryption of endpoint secrets at rest.

``WEBHOOKS_ENCRYPTION_KEY`` holds one or more Fernet keys separated by commas:
the first encrypts, every one decrypts. Rotation = put the new key first, keep
the old one after it, run ``flask --app webapp rotate-key``, then drop the old.
"""
from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


class SecretBox:
    def __init__(self, keys: str):
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise ValueError("WEBHOOKS_ENCRYPTION_KEY is empty")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in parts])
        except ValueError:
            raise ValueError(
                "WEBHOOKS_ENCRYPTION_KEY must be comma-separated Fernet keys "
                "(32 url-safe base64-encoded bytes each)"
            ) from None

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError("stored secret cannot be decrypted with WEBHOOKS_ENCRYPTION_KEY") from None

    def rotate(self, token: str) -> str:
        """Re-encrypt with the first (newest) key."""
        return self._fernet.rotate(token.encode()).decode()


def secret_box() -> SecretBox:
    box = current_app.extensions.get("webhooks_secret_box")
    if box is None:
        box = SecretBox(current_app.config["WEBHOOKS_ENCRYPTION_KEY"])
        current_app.extensions["webhooks_secret_box"] = box
    return box
