"""Add the endpoint's authentication to an outgoing request: none, basic, aws, aws-s3.

The Test button and every real delivery go through ``authenticate``: one signing path.
"""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ..signing import basic, s3, sigv4
from .payload import JSON
from .send import OutgoingRequest, wire_url

if TYPE_CHECKING:
    from .outgoing import MessageContent
    from .target import Target

AUTH_TYPES = ("none", "basic", "aws", "aws-s3")


def authenticate(target: "Target", request: OutgoingRequest, content: "MessageContent", now: dt.datetime) -> OutgoingRequest:
    if target.auth_type == "none":
        return request
    if target.secret_problem:
        raise ValueError(target.secret_problem)
    if target.auth_type == "basic":
        return with_basic(target, request)
    if target.auth_type == "aws":
        return with_sigv4(target, request, now)
    if target.auth_type == "aws-s3":
        return as_s3_put(target, request, content)
    raise ValueError(f"unknown authentication type {target.auth_type!r}")


def with_basic(target: "Target", request: OutgoingRequest) -> OutgoingRequest:
    header = ("Authorization", basic.authorization(target.username, target.secret))
    return OutgoingRequest(request.method, request.url, request.headers + [header], request.body,
                           secret_headers=frozenset({"authorization"}))


def with_sigv4(target: "Target", request: OutgoingRequest, now: dt.datetime) -> OutgoingRequest:
    url = wire_url(request.url)
    added = sigv4.sign(
        request.method, url, request.headers, request.body,
        access_key_id=target.access_key_id, secret_key=target.secret, region=target.region,
        service=target.service, algo_prefix=target.algo_prefix, vendor_key=target.vendor_key,
        now=now.replace(tzinfo=dt.timezone.utc),
    )
    auth_header = "authorization" if target.vendor_key.lower() == "amz" else f"x-{target.vendor_key.lower()}-auth"
    return OutgoingRequest(request.method, url, request.headers + added, request.body,
                           secret_headers=frozenset({auth_header}))


def as_s3_put(target: "Target", request: OutgoingRequest, content: "MessageContent") -> OutgoingRequest:
    """PUT the message as an object; botocore signs it the S3 way (x-amz-content-sha256)."""
    key = s3.render_key(
        target.filename_format, action=content.action, customer=content.customer,
        event_id=content.event_id, message_id=content.message_id, created_at=content.created_at,
        ext="json" if target.content_type == JSON else "txt",
    )
    url = wire_url(s3.object_url(target.url, key))
    aws_request = AWSRequest(method="PUT", url=url, data=request.body, headers=dict(request.headers))
    aws_request.headers["x-amz-meta-webhook-id"] = content.event_id
    credentials = Credentials(target.access_key_id, target.secret)
    S3SigV4Auth(credentials, target.service or "s3", target.region).add_auth(aws_request)
    headers = [(name, value) for name, value in aws_request.headers.items()]
    return OutgoingRequest("PUT", url, headers, request.body, secret_headers=frozenset({"authorization"}))
