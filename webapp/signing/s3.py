"""AWS-S3 delivery: the message is PUT as an object, signed the S3 way by botocore.

The object key comes from the endpoint's filename format, e.g.
``webhooks/{date:%Y/%m/%d}/{action}-{message_id}.{ext}``.
"""
from __future__ import annotations

import datetime as dt
import string
from urllib.parse import quote

PLACEHOLDERS = ("action", "customer", "event_id", "message_id", "date", "ext")
DEFAULT_DATE_FORMAT = "%Y-%m-%d"


def check_filename_format(template: str) -> None:
    """Raise ValueError naming the first unknown or malformed placeholder."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"is not a valid format ({exc}); use placeholders like {{action}}") from None
    names = [name for _, name, _, _ in parsed if name is not None]
    if not names and not template.strip():
        raise ValueError("must not be empty")
    for (_, name, spec, conversion) in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            allowed = ", ".join("{%s}" % p for p in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{name}}}; allowed: {allowed}")
        if conversion:
            raise ValueError(f"placeholder {{{name}}} does not take a !{conversion} conversion")
        if spec and name != "date":
            raise ValueError(f"only {{date}} takes a format, not {{{name}:{spec}}}")


def render_key(template: str, *, action: str, customer: str, event_id: str, message_id: int,
               created_at: dt.datetime, ext: str) -> str:
    values = {
        "action": action,
        "customer": customer,
        "event_id": event_id,
        "message_id": str(message_id),
        "ext": ext,
    }
    out = []
    for literal, name, spec, _ in string.Formatter().parse(template):
        out.append(literal)
        if name == "date":
            out.append(created_at.strftime(spec or DEFAULT_DATE_FORMAT))
        elif name is not None:
            out.append(values[name])
    return "".join(out).lstrip("/")


def object_url(bucket_url: str, key: str) -> str:
    """Bucket URL (path-style or virtual-host style) + the percent-encoded key."""
    return bucket_url.rstrip("/") + "/" + quote(key, safe="/~")
