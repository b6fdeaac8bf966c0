"""``python -m bench.signing``: what a Standard Webhooks signature adds to building one request.

Prints ``name value unit`` lines: microseconds per request signed with one secret, and with two
(during a rotation window), for a 0.5 KB JSON body. No network, no database.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import timeit
from dataclasses import dataclass

from webapp.signing import standard_webhooks
from webapp.signing.request import OutgoingRequest

ROUNDS = 20_000


@dataclass
class Settings:
    secret: str = "whsec_" + base64.b64encode(b"k" * 32).decode()
    previous_secret: str = "whsec_" + base64.b64encode(b"o" * 32).decode()
    previous_secret_until: dt.datetime | None = None


def per_request_us(settings: Settings) -> float:
    body = json.dumps({"id": "e" * 32, "data": {"note": "y" * 400}}).encode()
    request = OutgoingRequest("POST", "http://receiver/hook",
                              [("Webhook-Id", "e" * 32), ("Webhook-Timestamp", "1796000000")], body)
    now = dt.datetime(2026, 1, 1)
    seconds = timeit.timeit(lambda: standard_webhooks.with_signature(settings, request, None, now), number=ROUNDS)
    return seconds / ROUNDS * 1e6


def main() -> None:
    print(f"standard_webhooks_sign_one_secret {per_request_us(Settings()):.1f} us")
    rotating = Settings(previous_secret_until=dt.datetime(2100, 1, 1))
    print(f"standard_webhooks_sign_two_secrets {per_request_us(rotating):.1f} us")


if __name__ == "__main__":
    main()
