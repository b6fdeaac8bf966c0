"""Cross-check webapp.signing.sigv4.sign against botocore for AWS4 / X-Amz-* signing.

Requests are generated the way the product sends them: the URL's path and query are
already percent-encoded (and stay as they are when requests prepares them). botocore's
clock is frozen by patching botocore.auth.get_current_datetime, as ref_botocore.py does.
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import json
from dataclasses import dataclass
from unittest import mock
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from requests.utils import requote_uri

from webapp.signing.sigv4 import sign, signing_key

UTC = datetime.timezone.utc
NOW = datetime.datetime(2015, 8, 30, 12, 36)
PCHAR_SAFE = "!$&'()*+,;=:@~"   # RFC 3986 path characters a URL builder leaves alone
QUERY_SAFE = "-_.~"


@dataclass(frozen=True)
class Req:
    method: str
    url: str
    headers: tuple
    body: bytes
    service: str
    region: str = "us-east-1"
    now: datetime.datetime = NOW  # naive UTC, like botocore's clock
    access_key: str = "AKIDEXAMPLE"
    secret: str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    canonical_query: bool = True  # spaces as %20, not "+": botocore's URL mode agrees then


def ours(req: Req) -> dict[str, str]:
    added = sign(req.method, req.url, list(req.headers), req.body,
                 access_key_id=req.access_key, secret_key=req.secret, region=req.region,
                 service=req.service, now=req.now.replace(tzinfo=UTC))
    assert len({name.lower() for name, _ in added}) == len(added)
    return dict(added)


def botocore_headers(req: Req, query_as_params: bool = True) -> dict[str, str]:
    """What botocore adds. The query goes in as request.params (botocore's own
    test-harness convention) or stays in the URL (what its endpoint code does)."""
    query = urlsplit(req.url).query
    url = req.url.split("?", 1)[0] if query_as_params else req.url
    request = AWSRequest(method=req.method, url=url, data=req.body)
    if query_as_params and query:
        request.params = parse_qsl(query, keep_blank_values=True)
    for name, value in req.headers:
        request.headers[name] = value      # appends: repeated headers are kept
    auth_class = botocore.auth.S3SigV4Auth if req.service == "s3" else botocore.auth.SigV4Auth
    credentials = Credentials(req.access_key, req.secret)
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda *a, **k: req.now):
        auth_class(credentials, req.service, req.region).add_auth(request)
    wanted = ["X-Amz-Date", "Authorization"]
    if req.service == "s3":
        wanted.append("X-Amz-Content-SHA256")
    return {name: request.headers[name] for name in wanted}


# --------------------------------------------------------------------------- strategies

segment_text = st.text(
    alphabet=st.one_of(
        st.sampled_from("abcXYZ019-._~ $&+,;=:@!'()*%/?#[]\"<>\\^`{|}"),
        st.characters(codec="utf-8", categories=["L", "N", "S", "Zs"]),
    ),
    min_size=1, max_size=12,
)
query_text = st.one_of(st.just(""), segment_text)
header_names = st.from_regex(r"X-[A-Za-z][A-Za-z0-9-]{0,10}", fullmatch=True).filter(
    lambda name: name.lower() != "x-amz-date")
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF) | st.just("\t"), max_size=20)


@st.composite
def paths(draw, service):
    segments = draw(st.lists(st.one_of(segment_text, st.sampled_from([".", "..", ""])),
                             max_size=5))
    # S3 keys go out fully encoded (as botocore's serializer does; what S3 canonicalises to).
    # "a/./b" and "a//b" are legal keys there, never normalised.
    safe = "~" if service == "s3" else PCHAR_SAFE
    path = "/" + "/".join(quote(segment, safe=safe) for segment in segments)
    if path != "/" and draw(st.booleans()):
        path += "/"
    return path


@st.composite
def queries(draw, canonical):
    keys = draw(st.lists(query_text, min_size=1, max_size=3, unique=True))
    pairs = draw(st.lists(st.tuples(st.sampled_from(keys), query_text), max_size=5))
    encode = quote if canonical else quote_plus
    items = []
    for key, value in pairs:
        item = encode(key, safe=QUERY_SAFE)
        if value or not key or draw(st.booleans()):   # "k=" and a bare "k" mean the same
            item += "=" + encode(value, safe=QUERY_SAFE)
        items.append(item)
    return "&".join(items)


@st.composite
def bodies(draw):
    """A body and the headers describing it."""
    kind = draw(st.sampled_from(["empty", "binary", "json", "form"]))
    if kind == "empty":
        return b"", []
    if kind == "binary":
        body, content_type = draw(st.binary(min_size=1, max_size=64)), "application/octet-stream"
    elif kind == "json":
        data = draw(st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8),
                                    max_size=4))
        body, content_type = json.dumps(data).encode(), "application/json"
    else:
        data = draw(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=4))
        body, content_type = urlencode(data).encode(), "application/x-www-form-urlencoded"
    headers = [("Content-Type", content_type)]
    if draw(st.booleans()):
        headers.append(("Content-Length", str(len(body))))
    return body, headers


@st.composite
def requests_like_the_product(draw) -> Req:
    service = draw(st.sampled_from(["execute-api", "service", "s3"]))
    scheme = draw(st.sampled_from(["https", "http"]))
    host = draw(st.sampled_from(["example.com", "API.Example.org", "127.0.0.1", "[2001:db8::1]",
                                 "abc123.execute-api.eu-west-1.amazonaws.com",
                                 "bucket.s3.us-east-1.amazonaws.com"]))
    netloc = host + draw(st.sampled_from(["", ":443", ":80", ":8080"]))
    canonical_query = draw(st.booleans())
    query = draw(queries(canonical_query))
    url = f"{scheme}://{netloc}{draw(paths(service))}" + (f"?{query}" if query else "")

    body, headers = draw(bodies())
    if draw(st.booleans()):
        default_port = ":443" if scheme == "https" else ":80"
        headers.append(("Host", netloc.lower().removesuffix(default_port)))
    headers += [("User-Agent", "webhooks/0.1"), ("Webhook-Id", draw(st.uuids()).hex),
                ("Webhook-Timestamp", str(draw(st.integers(0, 2**33))))]
    headers += draw(st.lists(st.tuples(header_names, header_values), max_size=3))

    return Req(
        method=draw(st.sampled_from(["GET", "POST", "PUT"])),
        url=url, headers=tuple(headers), body=body, service=service,
        region=draw(st.from_regex(r"[a-z]{2}(-[a-z]{2,9}){1,2}-[1-9]|[A-Za-z0-9_-]{1,16}",
                                  fullmatch=True)),
        now=draw(st.datetimes(min_value=datetime.datetime(2000, 1, 1),
                              max_value=datetime.datetime(2099, 12, 31))),
        access_key=draw(st.from_regex(r"AKIA[A-Z0-9]{16}", fullmatch=True)),
        secret=draw(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E),
                            min_size=1, max_size=40)),
        canonical_query=canonical_query,
    )


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(req=requests_like_the_product())
# dot segments and duplicate slashes: normalised, then encoded a second time (non-S3)
@example(req=Req("GET", "https://example.com/a/./b/../c//d%20e/", (), b"", "execute-api"))
# unicode already percent-encoded by the sender, reserved characters left raw
@example(req=Req("POST", "https://example.com/caf%C3%A9/%E1%88%B4/$x;y=1:@!'()*+,",
                 (("Content-Type", "application/json"),), b'{"a": 1}', "service", "eu-central-1"))
# S3 key with reserved characters and a space, fully encoded; "." segment kept
@example(req=Req("PUT", "https://bucket.s3.amazonaws.com/dir/./test%24file%2B%20x.txt", (),
                 b"", "s3"))
# repeated keys (sorted by value), empty values, a bare key, encoded reserved characters
@example(req=Req("GET", "https://example.com/?b=&a=2&a=1&c&%2F%3F=%26%3D%23&%E1%88%B4=%20",
                 (), b"", "service"))
# form-style "+" for a space in the query (botocore's harness decodes it as a space too)
@example(req=Req("GET", "https://example.com/?q=a+b&r=%2B", (), b"", "execute-api",
                 canonical_query=False))
# upper-case host with a non-default port and no Host header
@example(req=Req("GET", "http://API.Example.org:8080/x", (), b"", "execute-api", "ap-south-1"))
# IPv6 literal with the default port, which the derived Host drops
@example(req=Req("GET", "https://[2001:db8::1]:443/", (), b"", "service"))
# runs of spaces, a tab and quotes in values; a repeated header; a binary body
@example(req=Req("POST", "https://example.com/",
                 (("X-Quoted", '  "a   b"\t c '), ("X-Rep", "2"), ("x-rep", " 1 "),
                  ("Content-Type", "application/octet-stream")), bytes(range(256)), "service"))
# query characters AWS encodes but Escher would not ("!", "*")
@example(req=Req("GET", "https://bucket.s3.amazonaws.com/k?k=%21%2A%27%28", (), b"", "s3"))
def test_same_headers_as_botocore(req):
    assert requote_uri(req.url) == req.url, "requests would not send the URL that was signed"
    expected = botocore_headers(req)
    assert ours(req) == expected
    if req.canonical_query:
        # a well-encoded query signs the same whether botocore reads it from params or the URL
        assert botocore_headers(req, query_as_params=False) == expected


# --------------------------------------------------------------------------- explicit cases

def sign_simple(url="https://example.com/path", headers=(), service="service", **kwargs):
    params = dict(access_key_id="AKIDEXAMPLE", secret_key="secret", region="eu-west-1",
                  service=service, now=NOW.replace(tzinfo=UTC))
    params.update(kwargs)
    return sign("POST", url, list(headers), b"{}", **params)


def test_other_vendor_uses_its_own_headers():
    added = dict(sign_simple(algo_prefix="EMS", vendor_key="Ems"))
    assert set(added) == {"X-Ems-Date", "X-Ems-Auth"}
    assert added["X-Ems-Date"] == "20150830T123600Z"
    assert added["X-Ems-Auth"].startswith(
        "EMS-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/service/aws4_request, "
        "SignedHeaders=host;x-ems-date, Signature=")


def test_amz_vendor_key_is_case_insensitive():
    names = [name for name, _ in sign_simple(vendor_key="AMZ")]
    assert names == ["X-AMZ-Date", "Authorization"]


def test_signing_key_is_cached_and_is_the_hmac_chain():
    signing_key.cache_clear()
    first = signing_key("AWS4", "secret", "20150830", "us-east-1", "service")
    again = signing_key("AWS4", "secret", "20150830", "us-east-1", "service")
    assert again is first
    assert (signing_key.cache_info().hits, signing_key.cache_info().misses) == (1, 1)
    key = b"AWS4secret"
    for part in ("20150830", "us-east-1", "service", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    assert first == key
    sign_simple()
    sign_simple()
    assert signing_key.cache_info().hits >= 2


def test_s3_raw_reserved_character_signs_like_its_encoded_form():
    # S3 canonicalises "$" as %24 (AWS docs); botocore would sign a raw "$" verbatim.
    raw = sign_simple("https://bucket.s3.amazonaws.com/test$file.text", service="s3")
    encoded = sign_simple("https://bucket.s3.amazonaws.com/test%24file.text", service="s3")
    assert raw == encoded


def test_s3_keeps_a_supplied_payload_hash():
    supplied = [("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")]
    added = dict(sign_simple(service="s3", headers=supplied))
    assert set(added) == {"X-Amz-Date", "Authorization"}
    assert "x-amz-content-sha256" in added["Authorization"]


def test_stale_signature_and_date_are_not_signed():
    stale = [("Authorization", "AWS4-HMAC-SHA256 old"), ("X-Amz-Date", "20000101T000000Z")]
    assert sign_simple(headers=stale) == sign_simple()


def test_naive_now_is_utc():
    assert sign_simple(now=NOW) == sign_simple(now=NOW.replace(tzinfo=UTC))
    cest = datetime.timezone(datetime.timedelta(hours=2))
    assert sign_simple(now=NOW.replace(tzinfo=UTC).astimezone(cest)) == sign_simple(now=NOW)


@pytest.mark.parametrize("date_header", [None, "Mon, 09 Sep 2011 23:36:00 GMT"])
def test_legacy_date_header(date_header):
    headers = [("Date", date_header)] if date_header else []
    added = dict(sign_simple(headers=headers, date_header_name="Date"))
    if date_header:
        assert "Date" not in added    # the supplied header is signed as it is
    else:
        assert added["Date"] == "Sun, 30 Aug 2015 12:36:00 GMT"
    assert "SignedHeaders=date;host," in added["Authorization"]


def test_naming_the_standard_date_header_changes_nothing():
    assert sign_simple(date_header_name="X-Amz-Date") == sign_simple()
