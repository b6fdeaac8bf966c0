"""Receiver handlers that check a request's authentication the way the receiving party would.

They never call ``webapp.signing``: Basic is decoded with ``base64``, AWS SigV4 is
recomputed with botocore's ``SigV4Auth``, and the Escher variant (custom prefix and
vendor key, e.g. ``EMS`` / ``X-Ems-Auth``) is authenticated with the ``escherauth``
package. A bug in our signer therefore shows up as a rejected delivery.

    verifier = sigv4_verifier("AKID", "secret", "eu-west-1", "execute-api")
    with Receiver(handler=verifier) as receiver:
        ...
    assert verifier.rejections == []

Each verifier is a ``Receiver`` handler: it answers 200 when the request is authentic
and 401 (Basic) or 403 (signatures) with the reason as the body otherwise. It keeps
a verdict per request (``None`` = accepted, else the reason) and can answer
``fail_first`` authentic requests with 500, to make the sender retry.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import threading
from collections.abc import Callable
from urllib.parse import parse_qsl

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from escherauth import Escher, EscherException

from tests.support.receiver import HandlerResult, RecordedRequest

AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
# AWS refuses requests whose signing time is more than 15 minutes off.
MAX_CLOCK_SKEW = dt.timedelta(minutes=15)
AUTHORIZATION_PATTERN = re.compile(
    r"^(?P<algorithm>\S+) Credential=(?P<credential>[^,]+),\s*"
    r"SignedHeaders=(?P<signed_headers>[^,]+),\s*Signature=(?P<signature>[0-9a-f]+)$"
)


class Verifier:
    """A ``Receiver`` handler: ``check(request)`` returns None if authentic, else why not."""

    def __init__(self, check: Callable[[RecordedRequest], str | None], reject_status: int,
                 fail_first: int = 0, challenge: str | None = None):
        self.check = check
        self.reject_status = reject_status
        self.challenge = challenge
        self._fail_left = fail_first
        self._lock = threading.Lock()
        self.verdicts: list[str | None] = []  # one per request, in arrival order

    @property
    def rejections(self) -> list[str]:
        with self._lock:
            return [reason for reason in self.verdicts if reason is not None]

    def __call__(self, request: RecordedRequest) -> HandlerResult:
        reason = self.check(request)
        with self._lock:
            self.verdicts.append(reason)
            fail_now = reason is None and self._fail_left > 0
            if fail_now:
                self._fail_left -= 1
        if reason is not None:
            headers = {"WWW-Authenticate": self.challenge} if self.challenge else {}
            return self.reject_status, headers, reason.encode()
        if fail_now:
            return 500, {}, b"authentic, but failing on purpose"
        return 200, {}, b"verified"


# --------------------------------------------------------------------------- Basic

def check_basic(request: RecordedRequest, username: str, password: str) -> str | None:
    header = request.header("Authorization")
    if header is None:
        return "no Authorization header"
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return f"Authorization scheme is {scheme!r}, not Basic"
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        return f"Basic credentials are not base64 of UTF-8 text: {exc}"
    got_user, colon, got_password = decoded.partition(":")
    if not colon:
        return "Basic credentials have no ':' between user and password"
    if got_user != username:
        return f"wrong user {got_user!r}"
    if not hmac.compare_digest(got_password.encode(), password.encode()):
        return "wrong password"
    return None


def basic_verifier(username: str, password: str, fail_first: int = 0) -> Verifier:
    return Verifier(lambda request: check_basic(request, username, password), 401, fail_first,
                    challenge='Basic realm="webhooks", charset="UTF-8"')


# --------------------------------------------------------------------------- AWS SigV4

def check_sigv4(request: RecordedRequest, access_key_id: str, secret: str, region: str, service: str,
                now: dt.datetime | None = None) -> str | None:
    """Verify an ``AWS4-HMAC-SHA256`` Authorization header as an AWS service would.

    botocore recomputes the signature over exactly the headers the request lists in
    ``SignedHeaders``, at the time given by its ``X-Amz-Date``. The query is decoded and
    re-encoded (server side, the received query is data, not a signed string).
    """
    header = request.header("Authorization")
    if header is None:
        return "no Authorization header"
    match = AUTHORIZATION_PATTERN.match(header)
    if match is None:
        return f"malformed Authorization header {header!r}"
    if match["algorithm"] != "AWS4-HMAC-SHA256":
        return f"algorithm is {match['algorithm']!r}, not AWS4-HMAC-SHA256"
    amz_date = request.header("X-Amz-Date")
    if amz_date is None:
        return "no X-Amz-Date header"
    try:
        signed_at = dt.datetime.strptime(amz_date, AMZ_DATE_FORMAT).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return f"X-Amz-Date {amz_date!r} is not YYYYMMDDTHHMMSSZ"
    now = now or dt.datetime.now(dt.timezone.utc)
    if abs(now - signed_at) > MAX_CLOCK_SKEW:
        return f"X-Amz-Date {amz_date} is too far from now"
    expected_credential = f"{access_key_id}/{amz_date[:8]}/{region}/{service}/aws4_request"
    if match["credential"] != expected_credential:
        return f"Credential is {match['credential']!r}, expected {expected_credential!r}"
    content_sha256 = request.header("X-Amz-Content-SHA256")
    if content_sha256 is not None and content_sha256 != hashlib.sha256(request.body).hexdigest():
        return "X-Amz-Content-SHA256 does not match the body"

    signed_names = match["signed_headers"].split(";")
    missing = [name for name in signed_names if request.header(name) is None]
    if missing:
        return f"signed headers not in the request: {missing}"
    path, _, query = request.path.partition("?")
    aws_request = AWSRequest(
        method=request.method,
        url=f"http://{request.header('Host')}{path}",
        data=request.body,
        params=parse_qsl(query, keep_blank_values=True),
    )
    for name, value in request.headers:
        if name.lower() in signed_names:
            aws_request.headers[name] = value  # HTTPHeaders keeps duplicates in order
    aws_request.context["timestamp"] = amz_date

    signer = SigV4Auth(Credentials(access_key_id, secret), service, region)
    botocore_names = signer.signed_headers(signer.headers_to_sign(aws_request))
    if botocore_names != match["signed_headers"]:
        return f"SignedHeaders {match['signed_headers']!r}; botocore would sign {botocore_names!r}"
    canonical_request = signer.canonical_request(aws_request)
    expected = signer.signature(signer.string_to_sign(aws_request, canonical_request), aws_request)
    if not hmac.compare_digest(expected, match["signature"]):
        return f"signature mismatch; botocore's canonical request was:\n{canonical_request}"
    return None


def sigv4_verifier(access_key_id: str, secret: str, region: str, service: str,
                   fail_first: int = 0) -> Verifier:
    return Verifier(lambda request: check_sigv4(request, access_key_id, secret, region, service),
                    403, fail_first)


# --------------------------------------------------------------------------- Escher (EMS)

def check_escher(request: RecordedRequest, access_key_id: str, secret: str, region: str, service: str,
                 algo_prefix: str = "EMS", vendor_key: str = "Ems") -> str | None:
    """Authenticate an Escher-signed request (``X-<vendor>-Date`` / ``X-<vendor>-Auth``) with escherauth."""
    escher = Escher(access_key_id, secret, f"{region}/{service}/aws4_request", {
        "algo_prefix": algo_prefix,
        "vendor_key": vendor_key,
        "hash_algo": "SHA256",
        "auth_header_name": f"X-{vendor_key}-Auth",
        "date_header_name": f"X-{vendor_key}-Date",
        "clock_skew": int(MAX_CLOCK_SKEW.total_seconds()),
    })
    escher_request = {
        "method": request.method,
        "url": request.path,
        "headers": [[name, value] for name, value in request.headers],
        "body": request.body.decode("utf-8"),
        "host": request.header("Host"),
    }
    try:
        escher.authenticate(escher_request, {access_key_id: secret})
    except EscherException as exc:
        return f"escherauth: {exc}"
    return None


def escher_verifier(access_key_id: str, secret: str, region: str, service: str,
                    algo_prefix: str = "EMS", vendor_key: str = "Ems", fail_first: int = 0) -> Verifier:
    return Verifier(
        lambda request: check_escher(request, access_key_id, secret, region, service, algo_prefix, vendor_key),
        403, fail_first,
    )


# --------------------------------------------------------------------------- Standard Webhooks

def check_standard_webhooks(request: RecordedRequest, secret: str) -> str | None:
    """Verify with both the ``standardwebhooks`` package and ``svix``'s verifier, as a partner would;
    None only when both accept the raw body and headers."""
    from standardwebhooks import Webhook as StandardWebhook
    from svix.webhooks import Webhook as SvixWebhook

    headers = dict(request.headers)
    # standardwebhooks parses the body as JSON unless told not to; a form body is fine too.
    checks = (("standardwebhooks", lambda: StandardWebhook(secret).verify(request.body, headers, json_parse=False)),
              ("svix", lambda: SvixWebhook(secret).verify(request.body, headers)))
    for name, verify in checks:
        try:
            verify()
        except Exception as exc:  # noqa: BLE001 - each library's refusal is the verdict
            return f"{name}: {exc}"
    return None


def standard_webhooks_verifier(secret: str, fail_first: int = 0) -> Verifier:
    return Verifier(lambda request: check_standard_webhooks(request, secret), 401, fail_first)
