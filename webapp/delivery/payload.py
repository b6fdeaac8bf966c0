"""The body of a webhook message, JSON or form-urlencoded, built from its event.

The body depends only on the event, so every retry and resend of a message
carries exactly the same content.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

from ..storage.models import EVENT_DATA_ENCODER

JSON = "json"
FORM = "form"
CONTENT_TYPES = {JSON: "application/json", FORM: "application/x-www-form-urlencoded"}


def iso_utc(moment: dt.datetime) -> str:
    return moment.replace(tzinfo=dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(event_id: str, action: str, customer: str, created_at: dt.datetime, data: Any) -> dict:
    return {
        "id": event_id,
        "action": action,
        "customer": customer,
        "created_at": iso_utc(created_at),
        "data": data,
    }


def render_body(content_type: str, message: dict) -> bytes:
    """``message`` is the envelope(); ``data`` may still be its JSON text (as emit stored it)."""
    data = message["data"]
    if content_type == FORM:
        message = {**message, "data": json.loads(data) if isinstance(data, str) else data}
        return urlencode(list(flatten(message))).encode()
    # Stored JSON text goes in as it is, not parsed and encoded again (a fifth of a sender's CPU): it was
    # written in this same encoding, so the bytes are those of encoding the whole envelope at once.
    encode = EVENT_DATA_ENCODER.encode
    fields = (f"{encode(key)}:{data if key == 'data' and isinstance(data, str) else encode(value)}"
              for key, value in message.items())
    return ("{" + ",".join(fields) + "}").encode()


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested data as PHP/Rails-style form pairs: ``data[key][sub]=v``, lists by index."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return [(prefix, form_scalar(value))]
    pairs: list[tuple[str, str]] = []
    for key, inner in items:
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(inner, (dict, list)) and not inner:
            pairs.append((name, ""))
        else:
            pairs.extend(flatten(inner, name))
    return pairs


def form_scalar(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)
