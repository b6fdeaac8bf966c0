"""What every scenario sends: events whose webhook body is about 500 bytes of JSON.

The product wraps ``data`` in its envelope (id, action, customer, created_at);
the baselines send the same envelope; the ceiling posts a 500-byte JSON body.
So every contender puts the same number of bytes on the wire per message.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid

BODY_BYTES = 500
ACTION = "checkout"
# id (32 hex), action, customer and created_at take about 130 bytes of the envelope.
ENVELOPE_BYTES = 130


def sample_data(number: int) -> dict:
    """The ``data`` of event ``number``: padded so the whole body is about BODY_BYTES."""
    data = {"order": f"order-{number:08d}", "total": 99.5, "points": 10, "note": ""}
    filler = BODY_BYTES - ENVELOPE_BYTES - len(json.dumps(data, separators=(",", ":")))
    data["note"] = "x" * max(filler, 0)
    return data


def sample_event(number: int) -> tuple[str, str, dict]:
    """(action, customer, data) as ``emit`` takes them."""
    return ACTION, f"customer-{number % 50_000:05d}", sample_data(number)


def sample_events(count: int, first: int = 0) -> list[tuple[str, str, dict]]:
    return [sample_event(number) for number in range(first, first + count)]


def naive_payload(number: int) -> dict:
    """The envelope a hand-written sender posts (same fields and size as the product's)."""
    action, customer, data = sample_event(number)
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"id": uuid.uuid4().hex, "action": action, "customer": customer, "created_at": created, "data": data}


def ceiling_body() -> bytes:
    """A 500-byte JSON document, sent as is by the raw sender loop."""
    document = {"id": uuid.uuid4().hex, "action": ACTION, "customer": "customer-00000", "note": ""}
    document["note"] = "x" * (BODY_BYTES - len(json.dumps(document, separators=(",", ":"))))
    return json.dumps(document, separators=(",", ":")).encode()
