"""A snapshot of one endpoint's delivery settings, secret decrypted, for one job."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from ..signing.auth_types import FIELD_DEFAULTS, PLAIN_FIELDS
from ..storage.crypto import secret_box
from ..storage.models import Endpoint
from .payload import JSON


@dataclass(frozen=True)
class Target:
    endpoint_id: int
    url: str
    timeout: float
    content_type: str
    proxy_url: str | None
    queue_batches: bool
    threads: int
    auth_type: str = "none"
    username: str = ""
    secret: str = ""
    region: str = ""
    service: str = ""
    access_key_id: str = ""
    algo_prefix: str = FIELD_DEFAULTS["algo_prefix"]
    vendor_key: str = FIELD_DEFAULTS["vendor_key"]
    filename_format: str = ""
    # Standard Webhooks after a rotation: the old secret, signed with too until the window ends.
    previous_secret: str = ""
    previous_secret_until: dt.datetime | None = None
    # (name, value, secret?) sent on every attempt, before signing.
    custom_headers: tuple[tuple[str, str, bool], ...] = ()
    # Why the stored secret is unusable (e.g. encrypted with a key we no longer have).
    secret_problem: str | None = None
    headers_problem: str | None = None

    @classmethod
    def from_endpoint(cls, endpoint: Endpoint, proxy_url: str | None) -> "Target":
        secret, problem = decrypted(endpoint.auth_secret_encrypted)
        previous, previous_problem = decrypted(endpoint.auth_previous_secret_encrypted)
        headers, headers_problem = [], None
        for header in json.loads(endpoint.custom_headers_json or "[]"):  # an ORM object or a claimed row
            value, header_problem = decrypted(header["value"]) if header.get("secret") else (header["value"], None)
            headers.append((header["name"], value, bool(header.get("secret"))))
            headers_problem = headers_problem or header_problem
        return cls(
            endpoint_id=endpoint.id,
            url=endpoint.url,
            timeout=float(endpoint.timeout or 1),
            content_type=endpoint.content_type,
            proxy_url=proxy_url if endpoint.use_proxy else None,
            queue_batches=endpoint.queue_batches,
            threads=endpoint.threads if endpoint.queue_batches else 1,
            auth_type=endpoint.auth_type or "none",
            secret=secret,
            **{name: getattr(endpoint, f"auth_{name}") or FIELD_DEFAULTS.get(name, "") for name in PLAIN_FIELDS},
            previous_secret=previous,
            previous_secret_until=endpoint.auth_previous_secret_until,
            custom_headers=tuple(headers),
            secret_problem=problem or previous_problem,
            headers_problem=headers_problem,
        )

    @property
    def file_extension(self) -> str:
        """Of an S3 object holding one message."""
        return "json" if self.content_type == JSON else "txt"

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"Target(endpoint_id={self.endpoint_id}, url={self.url!r}, auth_type={self.auth_type!r})"


def decrypted(token: str | None) -> tuple[str, str | None]:
    """(plain text, None), or ("", why not): every attempt then fails with the reason, rather than the job."""
    if not token:
        return "", None
    try:
        return secret_box().decrypt(token), None
    except ValueError as exc:
        return "", str(exc)
