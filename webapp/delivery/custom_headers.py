"""Which headers an endpoint may add to every request, and which values they may carry.

Refused: hop-by-hop and framing headers (a proxy or the connection owns them), the headers
the product sets itself (Content-Type, User-Agent, Webhook-*), those the endpoint's
authentication type sets (its registry entry's ``headers``), names that are not HTTP
tokens and values that are not printable ASCII (a CR/LF would start a new header).
"""
from __future__ import annotations

import fnmatch
import re

from ..signing.auth_types import auth_type

MAX_HEADERS = 20
MAX_NAME_LENGTH, MAX_VALUE_LENGTH = 100, 2048
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 field-name
PRINTABLE = re.compile(r"[\x20-\x7e]*")
HOP_BY_HOP = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection",
    "proxy-authorization", "proxy-authenticate", "te", "trailer", "upgrade", "expect",
})
PRODUCT_SET = ("content-type", "user-agent", "webhook-*")


def name_problem(name: str, kind: str, vendor_key: str) -> str | None:
    if not name:
        return "needs a name"
    if len(name) > MAX_NAME_LENGTH:
        return f"name is longer than {MAX_NAME_LENGTH} characters"
    if not TOKEN.fullmatch(name):
        return "name must be letters, digits and !#$%&'*+-.^_`|~ only (no spaces, colons or other characters)"
    lower = name.lower()
    if lower in HOP_BY_HOP:
        return f"{name} is a hop-by-hop or framing header: the connection sets it, an endpoint cannot"
    if any(fnmatch.fnmatchcase(lower, pattern) for pattern in PRODUCT_SET):
        return f"{name} is set by the product on every message"
    own = auth_type(kind)
    patterns = [pattern.format(vendor_key=(vendor_key or "amz").lower()) for pattern in own.headers]
    if any(fnmatch.fnmatchcase(lower, pattern) for pattern in patterns):
        return f"{name} is set by {own.label} authentication"
    return None


def value_problem(value: str) -> str | None:
    if len(value) > MAX_VALUE_LENGTH:
        return f"value is longer than {MAX_VALUE_LENGTH} characters"
    if not PRINTABLE.fullmatch(value):
        bad = next(ch for ch in value if not PRINTABLE.fullmatch(ch))
        return (f"value must be printable ASCII without line breaks or other control characters "
                f"(it holds U+{ord(bad):04X})")
    return None
