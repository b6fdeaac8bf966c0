"""A snapshot of one endpoint's delivery settings, secret decrypted, for one job."""
from __future__ import annotations

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
    # Why the stored secret is unusable (e.g. encrypted with a key we no longer have).
    secret_problem: str | None = None

    @classmethod
    def from_endpoint(cls, endpoint: Endpoint, proxy_url: str | None) -> "Target":
        secret, problem = "", None
        if endpoint.auth_secret_encrypted:
            try:
                secret = secret_box().decrypt(endpoint.auth_secret_encrypted)
            except ValueError as exc:  # every attempt fails with this, rather than the job
                problem = str(exc)
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
            secret_problem=problem,
        )

    @property
    def file_extension(self) -> str:
        """Of an S3 object holding one message."""
        return "json" if self.content_type == JSON else "txt"

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"Target(endpoint_id={self.endpoint_id}, url={self.url!r}, auth_type={self.auth_type!r})"
