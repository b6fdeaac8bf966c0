"""The body of a webhook message, JSON or form-urlencoded, built from its event.

The body depends only on the event, so every retry and resend of a message
carries exactly the same content.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

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
    """``message`` is the envelope(); ``data`` may still be its JSON text."""
    data = message["data"]
    if isinstance(data, str):
        data = json.loads(data)
    message = {**message, "data": data}
    if content_type == FORM:
        return urlencode(list(flatten(message))).encode()
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


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
