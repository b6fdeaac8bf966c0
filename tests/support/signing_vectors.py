"""The public AWS SigV4 / S3 / Escher signing vectors in tests/data/signing_vectors: loaders and checks.

Adapted from the vectors' stand-alone runner (check_signer.py, see the README beside
the data): the same input conventions and checks, read from the repository only.
A signer is ``sign(method, url, headers, body, *, access_key_id, secret_key, region,
service, algo_prefix="AWS4", vendor_key="Amz", now) -> list[(name, value)]``; the
optional keywords ``date_header_name`` and ``normalize_path`` unlock the cases that
need them (the "extensions").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import json
import os
import re
import traceback
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

VECTORS_DIR = Path(__file__).resolve().parent.parent / "data" / "signing_vectors"
EXTENSIONS = ("date_header_name", "normalize_path")
# The counts of vectors checked, printed in the terminal summary (tests/conftest.py).
SUMMARY_LINES = pytest.StashKey[list]()
SUITES = (
    "aws4/aws-c-auth-v4",
    "aws4/aws-sig-v4-test-suite",
    "aws4/aws4_testsuite-2011",
    "s3/aws-s3-docs",
    "escher/EscherAuth-test-cases",
    "escher/emartech-escher-test-suite",
)


class Case:
    def __init__(self, suite, name, path):
        self.suite = suite
        self.name = name
        self.path = path
        self.skip = None            # reason string -> not applicable
        self.needs = {}             # extension kwargs needed, e.g. {"date_header_name": "Date"}
        self.method = self.url = None
        self.headers = []
        self.body = b""
        self.params = {}            # access_key_id, secret_key, region, service, algo_prefix, vendor_key, now
        self.expected_auth = None
        self.must_return = {}       # lower-case header name -> value the signer must add
        self.supplied = {}          # lower-case header name -> value we supplied that must not change
        self.signed_headers_as_set = False
        self.expected_creq = None
        self.expected_sts = None
        self.note = ""

    @property
    def id(self):
        return f"{self.suite}/{self.name}"


def _na(case, reason):
    case.skip = reason
    return case


# --------------------------------------------------------------------------- helpers

def amz_date(now):
    return now.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def http_date(now):
    return now.astimezone(dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")


def parse_time(value):
    value = value.strip()
    if re.fullmatch(r"\d{8}T\d{6}Z", value):
        return dt.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        t = parsedate_to_datetime(value)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.astimezone(dt.timezone.utc)


def read(path, binary=False):
    with open(path, "rb") as f:
        data = f.read()
    return data if binary else data.decode("utf-8")


def parse_http(text, target_mode="rsplit"):
    """Parse a raw request (.req / request.txt / .sreq).

    target_mode "rsplit": target = text between the first and the last space of
    the request line (2015 suites: "GET /example space/ HTTP/1.1").
    target_mode "token": target = second space-separated token (2011 suite,
    whose post-vanilla-query-nonunreserved request line has unescaped spaces).
    Folded (obs-fold) header lines are unfolded by dropping the line break and
    keeping the continuation line's leading whitespace.
    """
    text = text.replace("\r\n", "\n")
    head, sep, body = text.partition("\n\n")
    lines = head.split("\n")
    reqline = lines[0]
    if target_mode == "token":
        parts = reqline.split(" ")
        method, target = parts[0], parts[1]
    else:
        method, rest = reqline.split(" ", 1)
        target = rest.rsplit(" ", 1)[0]
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and headers:
            k, v = headers[-1]
            headers[-1] = (k, v + line)
            continue
        k, _, v = line.partition(":")
        headers.append((k, v))
    return method, target, headers, body.encode("utf-8")


def hget(headers, name):
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


def hdrop(headers, name):
    return [(k, v) for k, v in headers if k.lower() != name.lower()]


AUTH_RE = re.compile(r"^\s*(\S+)\s+(.*?)\s*$", re.S)


def parse_auth(value):
    m = AUTH_RE.match(value or "")
    if not m:
        return None
    out = {"algorithm": m.group(1)}
    for part in m.group(2).split(","):
        k, _, v = part.strip().partition("=")
        out[k.strip()] = v.strip()
    return out


# --------------------------------------------------------------------------- loaders

def load_aws_c_auth(root, suite):
    """awslabs/aws-c-auth tests/aws-signing-test-suite/v4/<case>/{context.json,request.txt,header-*.txt}."""
    cases = []
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        if not os.path.isfile(os.path.join(d, "context.json")):
            continue
        c = Case(suite, name, d)
        ctx = json.loads(read(os.path.join(d, "context.json")))
        method, target, headers, body = parse_http(read(os.path.join(d, "request.txt")))
        cred = ctx["credentials"]
        now = parse_time(ctx["timestamp"])
        token = cred.get("token")
        if token and not ctx.get("omit_session_token", False):
            headers.append(("X-Amz-Security-Token", token))
            c.note = "session token supplied as an input header"
        if ctx.get("sign_body"):
            headers.append(("x-amz-content-sha256", hashlib.sha256(body).hexdigest()))
            c.note = "x-amz-content-sha256 supplied as an input header (sign_body=true)"
        if not ctx.get("normalize", True):
            c.needs["normalize_path"] = False
        host = hget(headers, "host")
        c.method, c.url, c.headers, c.body = method, f"https://{host}{target}", headers, body
        c.params = dict(access_key_id=cred["access_key_id"], secret_key=cred["secret_access_key"],
                        region=ctx["region"], service=ctx["service"], algo_prefix="AWS4",
                        vendor_key="Amz", now=now)
        _, _, signed, _ = parse_http(read(os.path.join(d, "header-signed-request.txt")))
        c.expected_auth = hget(signed, "authorization")
        c.must_return = {"x-amz-date": hget(signed, "x-amz-date")}
        c.expected_creq = read(os.path.join(d, "header-canonical-request.txt"))
        c.expected_sts = read(os.path.join(d, "header-string-to-sign.txt"))
        cases.append(c)
    return cases


def _req_cases(root):
    for dirpath, _, files in os.walk(root):
        for f in sorted(files):
            if f.endswith(".req"):
                yield os.path.join(dirpath, f[:-4])


def load_req_layout(root, suite, legacy_2011=False):
    """.req/.creq/.sts/.authz/.sreq layout (2015 "aws-sig-v4-test-suite" and 2011 "aws4_testsuite")."""
    cases = []
    for base in sorted(_req_cases(root)):
        rel = os.path.relpath(base, root).replace(os.sep, "/")
        d, b = os.path.split(rel)
        name = d if d and os.path.basename(d) == b else rel   # "normalize-path/get-space", not ".../get-space/get-space"
        c = Case(suite, name, base + ".req")
        raw = read(base + ".req")
        method, target, headers, body = parse_http(raw, "token" if legacy_2011 else "rsplit")
        c.expected_auth = read(base + ".authz").strip()
        c.expected_creq = read(base + ".creq").replace("\r\n", "\n")
        c.expected_sts = read(base + ".sts").replace("\r\n", "\n")
        host = hget(headers, "host")
        if legacy_2011:
            date = hget(headers, "date")
            now = parse_time(date)
            region, service = "us-east-1", "host"
            c.needs["date_header_name"] = "Date"
            c.supplied = {"date": date}
            if "#" in target:
                _na(c, "request target contains a raw '#' (not representable in a URL)")
        else:
            xdate = hget(headers, "x-amz-date") or "20150830T123600Z"
            now = parse_time(xdate)
            headers = hdrop(headers, "x-amz-date")
            c.must_return = {"x-amz-date": xdate}
            region, service = "us-east-1", "service"
            m = re.search(r"^x-amz-security-token:(.*)$", c.expected_creq, re.M)
            if m and hget(headers, "x-amz-security-token") is None:
                headers.append(("X-Amz-Security-Token", m.group(1)))
                c.note = "session token (from .creq) supplied as an input header"
        c.method, c.url, c.headers, c.body = method, f"https://{host}{target}", headers, body
        c.params = dict(access_key_id="AKIDEXAMPLE",
                        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                        region=region, service=service, algo_prefix="AWS4", vendor_key="Amz", now=now)
        cases.append(c)
    return cases


def load_s3(path, suite, caller_supplies_sha256=False):
    doc = json.loads(read(path))
    cases = []
    for v in doc["cases"]:
        c = Case(suite, v["name"], path)
        c.method, c.url = v["method"], v["url"]
        c.headers = [tuple(h) for h in v["headers"]]
        c.body = v["body"].encode("utf-8")
        cr = doc["credentials"]
        c.params = dict(access_key_id=cr["access_key_id"], secret_key=cr["secret_key"],
                        region=v["region"], service=v["service"], algo_prefix="AWS4",
                        vendor_key="Amz", now=parse_time(v["timestamp"]))
        exp = v["expected"]
        c.expected_auth = exp["authorization"]
        c.must_return = {"x-amz-date": exp["x-amz-date"],
                         "x-amz-content-sha256": exp["x-amz-content-sha256"]}
        if caller_supplies_sha256:
            c.headers.append(("X-Amz-Content-SHA256", exp["x-amz-content-sha256"]))
            c.supplied["x-amz-content-sha256"] = exp["x-amz-content-sha256"]
            del c.must_return["x-amz-content-sha256"]
        for k, val in v.get("supplied", {}).items():
            c.supplied[k.lower()] = val
        c.expected_creq = exp.get("canonical_request")
        c.expected_sts = exp.get("string_to_sign")
        c.note = v.get("note", "")
        cases.append(c)
    return cases


SCOPE_RE = re.compile(r"^([^/]+)/([^/]+)/aws4_request$")
XDATE_RE = re.compile(r"^x-(.+)-date$", re.I)


def load_escher(root, suite):
    cases = []
    files = []
    for dirpath, dirnames, fnames in os.walk(root):
        for f in fnames:
            if f.endswith(".json"):
                files.append(os.path.join(dirpath, f))
    for path in sorted(files):
        rel = os.path.relpath(path, root).replace(os.sep, "/")[:-5]
        c = Case(suite, rel, path)
        t = json.loads(read(path))
        cfg = t.get("config", {})
        exp = t.get("expected", {})
        req = t.get("request", {})
        base = os.path.basename(rel)
        if rel.startswith(".conflict/"):
            cases.append(_na(c, "upstream marks it as conflicting (.conflict/)"))
            continue
        if base.startswith("presignurl") or "presigned" in base:
            cases.append(_na(c, "presigned-URL case (query signing), not header signing"))
            continue
        if "error" in base or "error" in exp:
            cases.append(_na(c, "negative/validation case for Escher's own sign/authenticate API"))
            continue
        if (cfg.get("hashAlgo") or "SHA256") != "SHA256":
            cases.append(_na(c, f"hashAlgo {cfg.get('hashAlgo')} (signer API is SHA256-only)"))
            continue
        m = SCOPE_RE.match(cfg.get("credentialScope", ""))
        if not m:
            cases.append(_na(c, f"credentialScope {cfg.get('credentialScope')!r} is not <region>/<service>/aws4_request"))
            continue
        region, service = m.groups()
        date_name = cfg.get("dateHeaderName") or "X-Escher-Date"
        auth_name = cfg.get("authHeaderName") or "X-Escher-Auth"
        headers = [tuple(h) for h in req.get("headers", [])]
        if base.startswith("authenticate-valid"):
            # a request that a correct verifier accepts: re-signing it must give the same signature
            auth = parse_auth(hget(headers, auth_name))
            signed = [h.lower() for h in auth["SignedHeaders"].split(";")]
            c.expected_auth = hget(headers, auth_name)
            c.signed_headers_as_set = True
            key_db = dict(t.get("keyDb", []))
            access = auth["Credential"].split("/", 1)[0]
            secret = key_db.get(access)
            now = parse_time(hget(headers, date_name))
            headers = hdrop(headers, auth_name)
        elif base.startswith("signrequest"):
            signed = {h.lower() for h in t.get("headersToSign", [])} | {"host", date_name.lower()}
            exp_req_headers = exp.get("request", {}).get("headers", [])
            c.expected_auth = hget(exp_req_headers, auth_name) or exp.get("authHeader")
            access, secret = cfg.get("accessKeyId"), cfg.get("apiSecret")
            now = parse_time(hget(headers, date_name) or cfg["date"])
            c.expected_creq = exp.get("canonicalizedRequest")
            c.expected_sts = exp.get("stringToSign")
            if hget(exp_req_headers, auth_name) and exp.get("authHeader") and \
                    hget(exp_req_headers, auth_name) != exp.get("authHeader"):
                c.note = ("expected.authHeader/canonicalizedRequest cover headersToSign only; "
                          "compared against the auth header in expected.request")
                c.expected_creq = c.expected_sts = None
        else:
            cases.append(_na(c, "not a signing case"))
            continue
        if not c.expected_auth or not secret:
            cases.append(_na(c, "no expected authorization / secret in vector"))
            continue
        if "#" in req.get("url", ""):
            cases.append(_na(c, "request url contains a raw '#' (not representable in a URL)"))
            continue
        if not req.get("url", "").startswith("/"):
            cases.append(_na(c, "request url is not a path"))
            continue
        headers = [(k, v) for k, v in headers if k.lower() in signed]
        host = hget(headers, "host")
        xm = XDATE_RE.match(date_name)
        vendor = xm.group(1) if xm else cfg.get("vendorKey", "Amz")
        existing_date = hget(headers, date_name)
        if xm:
            # standard dialect: the signer generates X-<vendor>-Date from `now`
            headers = hdrop(headers, date_name)
            c.must_return[date_name.lower()] = amz_date(now)
        else:
            # "Date" dialect (Escher + 2011 AWS suite): needs the date_header_name extension;
            # an existing Date header is supplied and must be reused unchanged.
            c.needs["date_header_name"] = date_name
            if existing_date is not None:
                c.supplied[date_name.lower()] = existing_date
            else:
                c.must_return[date_name.lower()] = http_date(now)
        c.method, c.url, c.headers = req.get("method"), f"https://{host}{req['url']}", headers
        c.body = (req.get("body") or "").encode("utf-8")
        c.params = dict(access_key_id=access, secret_key=secret, region=region, service=service,
                        algo_prefix=cfg.get("algoPrefix", "ESR"), vendor_key=vendor, now=now)
        cases.append(c)
    return cases


def load_all(s3_caller_supplies_sha256: bool = False) -> list[Case]:
    """Every case of every suite, read from VECTORS_DIR."""
    j = lambda *p: str(VECTORS_DIR.joinpath(*p))  # noqa: E731
    return [
        *load_aws_c_auth(j("aws4", "aws-c-auth-v4"), SUITES[0]),
        *load_req_layout(j("aws4", "aws-sig-v4-test-suite"), SUITES[1]),
        *load_req_layout(j("aws4", "aws4_testsuite-2011"), SUITES[2], True),
        *load_s3(j("s3", "s3-sigv4-header-examples.json"), SUITES[3], s3_caller_supplies_sha256),
        *load_escher(j("escher", "EscherAuth-test-cases"), SUITES[4]),
        *load_escher(j("escher", "emartech-escher-test-suite"), SUITES[5]),
    ]


def supported_extensions(fn, strict):
    if strict:
        return set()
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return set()
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return set(EXTENSIONS)
    return {e for e in EXTENSIONS if e in params}


def run_case(fn, c):
    """Return (status, message). status in PASS, FAIL, UNSUPPORTED."""
    kwargs = dict(c.params)
    kwargs.update(c.needs)
    try:
        out = fn(c.method, c.url, list(c.headers), c.body, **kwargs)
    except NotImplementedError as e:
        return "UNSUPPORTED", f"signer raised NotImplementedError: {e}"
    except Exception:  # noqa: BLE001
        return "FAIL", "signer raised:\n" + traceback.format_exc(limit=3)
    try:
        out = [(str(k), str(v)) for k, v in out]
    except Exception:  # noqa: BLE001
        return "FAIL", f"signer returned {out!r}, expected list[tuple[str, str]]"
    algo = c.params["algo_prefix"] + "-HMAC-"
    auths = [v for k, v in out if k.lower() == "authorization"] or \
            [v for k, v in out if v.startswith(algo)]
    problems = []
    if len(auths) != 1:
        problems.append(f"expected exactly one authorization header, got {len(auths)} in {out!r}")
    else:
        got, want = parse_auth(auths[0]), parse_auth(c.expected_auth)
        for field in ("algorithm", "Credential", "SignedHeaders", "Signature"):
            g, w = (got or {}).get(field), want.get(field)
            if field == "SignedHeaders" and c.signed_headers_as_set and g and w:
                g, w = sorted(g.split(";")), sorted(w.split(";"))
            if g != w:
                problems.append(f"{field}: got {g!r}, want {w!r}")
    for name, val in c.must_return.items():
        got = [v for k, v in out if k.lower() == name]
        if got != [val]:
            problems.append(f"header {name}: got {got!r}, want [{val!r}]")
    for name, val in c.supplied.items():
        got = [v for k, v in out if k.lower() == name]
        if got and got != [val]:
            problems.append(f"supplied header {name}={val!r} was changed to {got!r}")
    if not problems:
        return "PASS", ""
    msg = "\n".join("  " + p for p in problems)
    msg += f"\n  input: {c.method} {c.url!r}\n  headers: {c.headers!r}\n  body: {c.body[:80]!r}"
    msg += "\n  params: " + ", ".join(f"{k}={v!r}" for k, v in {**c.params, **c.needs}.items()
                                       if k != "secret_key")
    msg += f"\n  returned: {out!r}"
    if c.expected_creq:
        msg += "\n  expected canonical request:\n    " + c.expected_creq.replace("\n", "\n    ")
    if c.expected_sts:
        msg += "\n  expected string to sign:\n    " + c.expected_sts.replace("\n", "\n    ")
    return "FAIL", msg
