"""AWS Signature Version 4, generalised Escher-style to any algorithm prefix and vendor key.

Which canonicalisation rules apply (the "dialect") follows from the arguments:
* ``AWS4``/``Amz`` with ``X-Amz-Date``: AWS SigV4, byte for byte what botocore signs; for
  service ``s3`` the path is not normalised, is encoded once, and the payload hash is a header.
* ``AWS4``/``Amz`` with a legacy ``Date`` header: the 2011 AWS rules, which Escher inherited:
  path taken as sent, whitespace inside quotes kept, duplicate header values sorted.
* any other prefix or vendor key: Escher, the 2011 rules with duplicate values in request order.

``sign`` is a pure function: it returns the headers to add and never touches the network.
"""
from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
import re
from dataclasses import dataclass, replace
from email.utils import format_datetime
from urllib.parse import SplitResult, quote, unquote_to_bytes, urlsplit

from .request import MessageContent, OutgoingRequest, SigningSettings, wire_url

AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
PAYLOAD_HASH_HEADER = "X-Amz-Content-SHA256"

# Characters RFC 3986 allows in a path (besides letters, digits and "-._"): a path taken
# "as sent" is left alone, only characters that cannot appear in a URL get encoded.
URI_PATH_CHARS = "/%:@!$&'()*+,;=~"

# botocore never signs these hop-by-hop / tracing headers: proxies may rewrite them.
BOTOCORE_UNSIGNED_HEADERS = frozenset({
    "baggage", "connection", "expect", "keep-alive", "proxy-authenticate",
    "proxy-authorization", "te", "traceparent", "tracestate", "trailer",
    "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id",
})


@dataclass(frozen=True)
class Dialect:
    """How one flavour of the protocol canonicalises a request."""

    name: str
    normalize_path: bool = True       # drop "." / ".." segments and duplicate slashes
    path_safe: str = "/~"             # kept as is in the path (as are letters, digits, "-._")
    query_safe: str = "~"             # likewise for query keys and values
    trim_inside_quotes: bool = True   # collapse whitespace inside "quoted" header values too
    sort_duplicate_values: bool = False
    payload_hash_header: bool = True  # a supplied X-Amz-Content-SHA256 is the payload hash
    add_payload_hash: bool = False    # add X-Amz-Content-SHA256 when the caller did not
    unsigned_headers: frozenset = frozenset()


# Product URLs arrive percent-encoded; AWS encodes the path once more ("double encoding").
AWS = Dialect("aws", unsigned_headers=BOTOCORE_UNSIGNED_HEADERS)
# S3 signs the key as sent, but reserved characters such as "$" must still appear as %XX.
S3 = replace(AWS, name="s3", normalize_path=False, path_safe="/~%", add_payload_hash=True)
ESCHER = Dialect("escher", path_safe=URI_PATH_CHARS, query_safe="~!*",
                 trim_inside_quotes=False, payload_hash_header=False)
AWS_2011 = replace(ESCHER, name="aws-2011", sort_duplicate_values=True)


def choose_dialect(algo_prefix: str, vendor_key: str, service: str,
                   date_header_name: str | None = None) -> Dialect:
    if algo_prefix != "AWS4" or vendor_key.lower() != "amz":
        return ESCHER
    if date_header_name:
        return AWS_2011
    return S3 if service == "s3" else AWS


def sign(method: str, url: str, headers: list[tuple[str, str]], body: bytes, *,
         access_key_id: str, secret_key: str, region: str, service: str,
         algo_prefix: str = "AWS4", vendor_key: str = "Amz",
         now: datetime.datetime, date_header_name: str | None = None,
         normalize_path: bool = True) -> list[tuple[str, str]]:
    """Sign a request; return the headers to add (date, payload hash for S3, auth).

    ``url`` is the URL as it goes on the wire (path and query already percent-encoded).
    Returned headers replace any of the same name (a retry's stale date or signature).
    ``date_header_name`` (e.g. ``"Date"``) switches to the legacy dialect: a supplied header of
    that name is signed unchanged, a missing one is added as an IMF-fixdate. ``now`` must then
    be the instant that header states.
    """
    if date_header_name and date_header_name.lower() == f"x-{vendor_key}-date".lower():
        date_header_name = None  # naming the standard header is the same as not naming one
    dialect = choose_dialect(algo_prefix, vendor_key, service, date_header_name)
    if not normalize_path:
        dialect = replace(dialect, normalize_path=False)
    now = as_utc(now)
    stamp = now.strftime(AMZ_DATE_FORMAT)
    auth_name = "Authorization" if vendor_key.lower() == "amz" else f"X-{vendor_key}-Auth"
    date_name = date_header_name or f"X-{vendor_key}-Date"

    headers = without(headers, auth_name)  # a stale signature (retry) is replaced, not signed
    added = []
    if not (date_header_name and find(headers, date_name) is not None):
        headers = without(headers, date_name)
        added.append((date_name, format_datetime(now, usegmt=True) if date_header_name else stamp))
    payload_hash = find(headers, PAYLOAD_HASH_HEADER) if dialect.payload_hash_header else None
    if payload_hash is None:
        payload_hash = hashlib.sha256(body).hexdigest()
        if dialect.add_payload_hash:
            added.append((PAYLOAD_HASH_HEADER, payload_hash))

    creq, signed_names = canonical_request(method, url, headers + added, payload_hash, dialect)
    algorithm = f"{algo_prefix}-HMAC-SHA256"
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([algorithm, stamp, scope, sha256_hex(creq)])
    key = signing_key(algo_prefix, secret_key, stamp[:8], region, service)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    auth = (f"{algorithm} Credential={access_key_id}/{scope}, "
            f"SignedHeaders={signed_names}, Signature={signature}")
    return added + [(auth_name, auth)]


@functools.lru_cache(maxsize=1024)
def signing_key(algo_prefix: str, secret_key: str, date: str, region: str, service: str) -> bytes:
    """HMAC chain from ``algo_prefix + secret`` along ``date/region/service/aws4_request``."""
    key = (algo_prefix + secret_key).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


# --------------------------------------------------------------------------- canonical parts

def canonical_request(method: str, url: str, headers: list[tuple[str, str]], payload_hash: str,
                      dialect: Dialect) -> tuple[str, str]:
    """Return the canonical request and its SignedHeaders list."""
    parts = urlsplit(url)
    if find(headers, "host") is None:
        headers = headers + [("Host", host_from_url(parts))]
    canonical_headers, signed_names = canonicalize_headers(headers, dialect)
    creq = "\n".join([
        method.upper(),
        canonical_path(parts.path, dialect),
        canonical_query(parts.query, dialect.query_safe),
        canonical_headers,
        signed_names,
        payload_hash,
    ])
    return creq, signed_names

def canonical_path(path: str, dialect: Dialect) -> str:
    if dialect.normalize_path:
        path = remove_dot_segments(path)
    return quote(path or "/", safe=dialect.path_safe)


def remove_dot_segments(path: str) -> str:
    """RFC 3986 dot-segment removal that also collapses "//" (what AWS and botocore do)."""
    segments = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    trailing = "/" if path.endswith("/") and segments else ""
    return "/" + "/".join(segments) + trailing


def canonical_query(query: str, safe: str) -> str:
    pairs = []
    for item in query.split("&"):
        if item:
            key, _, value = item.partition("=")
            pairs.append((requote(key, safe), requote(value, safe)))
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def requote(text: str, safe: str) -> str:
    """Decode what the sender encoded ("+" is a space, as in forms), then encode canonically."""
    return quote(unquote_to_bytes(text.replace("+", " ")), safe=safe)


def canonicalize_headers(headers: list[tuple[str, str]], dialect: Dialect) -> tuple[str, str]:
    """Return the canonical header block (with its trailing newline) and the SignedHeaders list."""
    trim = trim_all if dialect.trim_inside_quotes else trim_outside_quotes
    values: dict[str, list[str]] = {}
    for name, value in headers:
        name = name.strip().lower()
        if name not in dialect.unsigned_headers:
            values.setdefault(name, []).append(trim(value))
    names = sorted(values)
    lines = []
    for name in names:
        found = sorted(values[name]) if dialect.sort_duplicate_values else values[name]
        lines.append(f"{name}:{','.join(found)}\n")
    return "".join(lines), ";".join(names)


def trim_all(value: str) -> str:
    return " ".join(value.split())


def trim_outside_quotes(value: str) -> str:
    # Split on quotes: even pieces are outside a quoted string, odd pieces inside it.
    pieces = value.strip().split('"')
    pieces[::2] = [re.sub(r"\s+", " ", piece) for piece in pieces[::2]]
    return '"'.join(pieces)


# --------------------------------------------------------------------------- small helpers

def host_from_url(parts: SplitResult) -> str:
    """The Host header an HTTP client sends: lower-case host, port only if not the default."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def as_utc(now: datetime.datetime) -> datetime.datetime:
    if now.tzinfo is None:  # naive datetimes are taken as UTC, as botocore's clock returns them
        return now.replace(tzinfo=datetime.timezone.utc)
    return now.astimezone(datetime.timezone.utc)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def find(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name.lower():
            return value
    return None


def without(headers: list[tuple[str, str]], name: str) -> list[tuple[str, str]]:
    return [(key, value) for key, value in headers if key.lower() != name.lower()]


def with_sigv4(target: SigningSettings, request: OutgoingRequest, content: MessageContent,
               now: datetime.datetime) -> OutgoingRequest:
    """The request signed for the endpoint's region, service, prefix and vendor key, on its wire URL."""
    url = wire_url(request.url)
    added = sign(
        request.method, url, request.headers, request.body,
        access_key_id=target.access_key_id, secret_key=target.secret, region=target.region,
        service=target.service, algo_prefix=target.algo_prefix, vendor_key=target.vendor_key,
        now=now.replace(tzinfo=datetime.timezone.utc),
    )
    auth_header = "authorization" if target.vendor_key.lower() == "amz" else f"x-{target.vendor_key.lower()}-auth"
    signed = OutgoingRequest(request.method, url, request.headers, request.body, request.secret_headers)
    return signed.adding(added, {auth_header})
