"""AWS-S3 delivery: the message is PUT as an object, signed the S3 way by botocore.

The object key comes from the endpoint's filename format, e.g.
``webhooks/{date:%Y/%m/%d}/{action}-{message_id}.{ext}``. Only the format decides
the key's folders: a placeholder value never adds a path segment or a dot segment.
In values, ``%`` is written ``%25``, ``/`` ``%2F`` and a backslash ``%5C``, and a segment that
a value leaves as ``.`` or ``..`` has its dots written ``%2E``; so customer
``../../x`` under ``prefix/{customer}.json`` is the key ``prefix/..%2F..%2Fx.json``.
"""
from __future__ import annotations

import datetime as dt
import string
from urllib.parse import quote

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .request import MessageContent, OutgoingRequest, SigningSettings, wire_url

PLACEHOLDERS = ("action", "customer", "event_id", "message_id", "date", "ext")
DEFAULT_DATE_FORMAT = "%Y-%m-%d"
VALUE_ESCAPES = str.maketrans({"%": "%25", "/": "%2F", "\\": "%5C"})
DOT_SEGMENTS = (".", "..")
SAMPLE_DATE = dt.datetime(2026, 1, 2, 3, 4, 5)


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
    sample = "".join(literal + value for literal, value in _pieces(
        template, {name: "x" for name in PLACEHOLDERS}, SAMPLE_DATE))
    if any(segment in DOT_SEGMENTS for segment in sample.split("/")):
        raise ValueError("must not contain '.' or '..' folders: S3 keys have no parent folders")


def render_key(template: str, *, action: str, customer: str, event_id: str, message_id: int,
               created_at: dt.datetime, ext: str) -> str:
    values = {
        "action": action,
        "customer": customer,
        "event_id": event_id,
        "message_id": str(message_id),
        "ext": ext,
    }
    key = "".join(literal + value for literal, value in _pieces(template, values, created_at)).lstrip("/")
    # Values hold no "/" any more; a "." or ".." segment can only come from a value (the format
    # itself may not have one), so writing its dots %2E keeps the key where the format put it.
    return "/".join(segment.replace(".", "%2E") if segment in DOT_SEGMENTS else segment
                    for segment in key.split("/"))


def _pieces(template: str, values: dict[str, str], created_at: dt.datetime):
    """(literal text, rendered placeholder) pairs; placeholder values escaped, the date as formatted."""
    for literal, name, spec, _ in string.Formatter().parse(template):
        if name == "date":
            yield literal, created_at.strftime(spec or DEFAULT_DATE_FORMAT)
        elif name is not None:
            yield literal, values[name].translate(VALUE_ESCAPES)
        else:
            yield literal, ""


def object_url(bucket_url: str, key: str) -> str:
    """Bucket URL (path-style or virtual-host style) + the percent-encoded key."""
    return bucket_url.rstrip("/") + "/" + quote(key, safe="/~")


def as_s3_put(target: SigningSettings, request: OutgoingRequest, content: MessageContent,
              now: dt.datetime) -> OutgoingRequest:
    """PUT the message as an object; botocore signs it the S3 way (x-amz-content-sha256)."""
    key = render_key(
        target.filename_format, action=content.action, customer=content.customer,
        event_id=content.event_id, message_id=content.message_id, created_at=content.created_at,
        ext=target.file_extension,
    )
    url = wire_url(object_url(target.url, key))
    aws_request = AWSRequest(method="PUT", url=url, data=request.body, headers=dict(request.headers))
    aws_request.headers["x-amz-meta-webhook-id"] = content.event_id
    credentials = Credentials(target.access_key_id, target.secret)
    S3SigV4Auth(credentials, target.service or "s3", target.region).add_auth(aws_request)
    headers = [(name, value) for name, value in aws_request.headers.items()]
    return OutgoingRequest("PUT", url, headers, request.body,
                           secret_headers=request.secret_headers | frozenset({"authorization"}))
