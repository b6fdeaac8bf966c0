"""What one attempt did: the request as sent (secrets redacted), the answer or the error.

Delivery and the Test button record it the same way; an attempt that failed
before anything went out is made with ``not_sent``.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from ..storage.models import utcnow


@dataclass
class Outcome:
    started_at: dt.datetime
    duration_ms: int
    request_method: str
    request_url: str
    request_headers: list[tuple[str, str]]
    request_body: str
    response_code: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: str = ""
    response_truncated: bool = False
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        """A 2xx answer, received whole within the timeout."""
        return self.error is None and self.response_code is not None and 200 <= self.response_code < 300

    @property
    def finished_at(self) -> dt.datetime:
        return self.started_at + dt.timedelta(milliseconds=self.duration_ms)

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.response_headers if key.lower() == wanted), None)


def not_sent(request_url: str, error: str, now: dt.datetime | None = None) -> Outcome:
    """The outcome of an attempt that failed before anything went out (e.g. the request could not be built)."""
    return Outcome(started_at=now or utcnow(), duration_ms=0, request_method="POST", request_url=request_url,
                   request_headers=[], request_body="", error=error)
