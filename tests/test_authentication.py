"""Outgoing authentication end to end: real worker processes, real servers on 127.0.0.1.

The receiving side checks every request independently of our signer
(tests/support/verifying_receivers.py: base64 for Basic, botocore for AWS SigV4,
escherauth for the EMS variant) and the AWS-S3 path PUTs into moto's S3 server with
signature checking switched on (tests/support/s3_server.py), so a wrong signature
is a 403 from the server, not an assertion about our own output.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import uuid
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import text

from tests.support.factories import attempts_of, final, make_endpoint
from tests.support.receiver import Receiver
from tests.support.s3_server import S3Server
from tests.support.verifying_receivers import (
    basic_verifier,
    check_basic,
    check_escher,
    check_sigv4,
    escher_verifier,
    sigv4_verifier,
)
from webapp.delivery.try_endpoint import send_test
from webapp.domain.events import emit
from webapp.domain.tokens import create_token
from webapp.extensions import db
from webapp.storage.crypto import secret_box
from webapp.storage.models import Attempt, Endpoint
from webapp.storage.statuses import DONE, FAILED

pytestmark = pytest.mark.db

BASIC_USER = "loyalty-shop"
BASIC_PASSWORD = "pässwörd-✓"
ACCESS_KEY_ID = "AKIDWEBHOOKSTEST01"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYhooksKEY"
EMS_SECRET = "ems-secret-Ünïcode-42"
REGION, SERVICE = "eu-central-1", "execute-api"
# A percent-encoded path (UTF-8 and a space) and an unsorted query with an encoded "/".
SIGNED_TARGET = "/hooks/caf%C3%A9%20menu/v1?zone=last&a=x%2Fy&empty="
S3_FILENAME_FORMAT = "webhooks/{date:%Y/%m/%d}/{customer}/{action}-{message_id}.{ext}"
ONE_ATTEMPT = {"WEBHOOKS_MAX_ATTEMPTS": "1"}




def message_for(event, endpoint: Endpoint):
    return next(m for m in event.messages if m.endpoint_id == endpoint.id)


def stored_header(attempt: Attempt, name: str) -> str | None:
    return next((value for key, value in attempt.request_headers if key.lower() == name.lower()), None)


def signed_header_names(authorization: str) -> set[str]:
    return set(re.search(r"SignedHeaders=([^,]+)", authorization).group(1).split(";"))


def aws_endpoint(url: str, secret: str = AWS_SECRET, **settings) -> Endpoint:
    return make_endpoint(url, auth_type="aws", auth_region=REGION, auth_service=SERVICE,
                         auth_access_key_id=ACCESS_KEY_ID, secret=secret, **settings)


def ems_endpoint(url: str) -> Endpoint:
    return make_endpoint(url, auth_type="aws", auth_region=REGION, auth_service=SERVICE,
                         auth_access_key_id=ACCESS_KEY_ID, secret=EMS_SECRET,
                         auth_algo_prefix="EMS", auth_vendor_key="Ems")


def s3_endpoint(s3: S3Server, bucket_url: str, secret: str | None = None, content_type: str = "json") -> Endpoint:
    access_key_id, real_secret = s3.credentials()
    return make_endpoint(bucket_url, auth_type="aws-s3", auth_region=s3.region, auth_service="s3",
                         auth_access_key_id=access_key_id, secret=secret or real_secret,
                         auth_filename_format=S3_FILENAME_FORMAT, content_type=content_type)


def expected_envelope(event) -> dict:
    """The webhook body as the SPEC describes it, built from the event we emitted."""
    created = event.created_at
    return {
        "id": event.id,
        "action": event.action,
        "customer": event.customer,
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created.microsecond // 1000:03d}Z",
        "data": event.data,
    }


@pytest.fixture(scope="module")
def s3_server():
    with S3Server(region="eu-west-1") as server:
        yield server


@pytest.fixture
def bucket(s3_server):
    """A fresh bucket per test: (name, path-style URL)."""
    name = f"hooks-{uuid.uuid4().hex[:12]}"
    return name, s3_server.create_bucket(name)


# --------------------------------------------------------------------------- 1. Basic

def test_basic_auth_with_a_utf8_password_is_valid_on_every_attempt(app, start_worker):
    verifier = basic_verifier(BASIC_USER, BASIC_PASSWORD, fail_first=1)
    with Receiver(handler=verifier) as receiver:
        make_endpoint(receiver.url, auth_type="basic", auth_username=BASIC_USER, secret=BASIC_PASSWORD)
        start_worker()
        event = emit("checkout", "cust-1", {"total": 12.5})
        message = final(event.messages[0].id)

        assert message.status == DONE and message.attempts == 2
        assert [a.response_code for a in attempts_of(message.id)] == [500, 200]
        assert verifier.verdicts == [None, None], "both attempts carry valid Basic credentials"
        first, second = receiver.requests
        assert first.header("Authorization") == second.header("Authorization")
        # The verifier is not a rubber stamp: the same request fails with another password.
        assert check_basic(first, BASIC_USER, "passwörd-✓") == "wrong password"
        assert check_basic(first, "someone-else", BASIC_PASSWORD) is not None


# --------------------------------------------------------------------------- 2. AWS SigV4

def test_aws_sigv4_is_accepted_by_botocore_and_a_wrong_secret_is_403(app, start_worker):
    good_verifier = sigv4_verifier(ACCESS_KEY_ID, AWS_SECRET, REGION, SERVICE)
    other_verifier = sigv4_verifier(ACCESS_KEY_ID, "a-different-secret", REGION, SERVICE)
    with Receiver(handler=good_verifier) as good, Receiver(handler=other_verifier) as other:
        good_endpoint = aws_endpoint(good.base_url + SIGNED_TARGET)
        other_endpoint = aws_endpoint(other.base_url + SIGNED_TARGET)
        start_worker(env=ONE_ATTEMPT)
        event = emit("points_added", "cust-2", {"points": 40, "note": "ünïcödé"})
        accepted = final(message_for(event, good_endpoint).id)
        rejected = final(message_for(event, other_endpoint).id)

        [request] = good.requests
        assert request.path == SIGNED_TARGET, "the URL went out exactly as configured"
        assert good_verifier.verdicts == [None]
        assert accepted.status == DONE and accepted.response_code == 200
        authorization = request.header("Authorization")
        assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/")
        assert {"host", "x-amz-date", "content-type", "webhook-id", "webhook-timestamp"} <= signed_header_names(authorization)

        assert rejected.status == FAILED and rejected.response_code == 403
        [attempt] = attempts_of(rejected.id)
        assert attempt.response_code == 403 and attempt.response_body.startswith("signature mismatch")
        assert len(other_verifier.rejections) == 1


def test_sigv4_verifier_rejects_a_tampered_request(app, start_worker):
    verifier = sigv4_verifier(ACCESS_KEY_ID, AWS_SECRET, REGION, SERVICE)
    with Receiver(handler=verifier) as receiver:
        aws_endpoint(receiver.base_url + SIGNED_TARGET)
        start_worker(env=ONE_ATTEMPT)
        event = emit("checkout", "cust-3", {"total": 1})
        assert final(event.messages[0].id).status == DONE
        [request] = receiver.requests

    def check(changed):
        return check_sigv4(changed, ACCESS_KEY_ID, AWS_SECRET, REGION, SERVICE)

    def with_header(name: str, value: str):
        headers = [(k, value if k.lower() == name.lower() else v) for k, v in request.headers]
        return dataclasses.replace(request, headers=headers)

    assert check(request) is None
    assert check(dataclasses.replace(request, body=request.body.replace(b'"total":1', b'"total":9'))) is not None
    assert check(with_header("Webhook-Id", uuid.uuid4().hex)) is not None
    assert check(dataclasses.replace(request, path=request.path.replace("zone=last", "zone=first"))) is not None
    assert check(dataclasses.replace(request, method="PUT")) is not None
    assert check_sigv4(request, ACCESS_KEY_ID, AWS_SECRET, "us-east-1", SERVICE) is not None


# --------------------------------------------------------------------------- URLs as typed

@pytest.mark.parametrize("target", ["/hooks/café/menü?q=ü", "/hooks/a%2fb%7e/?x=%7e&y=%c3%a9"])
@pytest.mark.parametrize("vendor", ["Amz", "Ems"])
def test_urls_are_signed_as_they_go_on_the_wire(app, target, vendor):
    """A URL saved as typed (raw UTF-8, lower-case or needless escapes) is normalised by
    requests before it is sent; the signature must cover that wire form."""
    if vendor == "Amz":
        verifier = sigv4_verifier(ACCESS_KEY_ID, AWS_SECRET, REGION, SERVICE)
    else:
        verifier = escher_verifier(ACCESS_KEY_ID, EMS_SECRET, REGION, SERVICE)
    with Receiver(handler=verifier) as receiver:
        endpoint = (aws_endpoint if vendor == "Amz" else ems_endpoint)(receiver.base_url + target)
        result = send_test(endpoint, "checkout")

        assert verifier.verdicts == [None], verifier.verdicts
        assert result.outcome.response_code == 200


# --------------------------------------------------------------------------- 3. Escher (EMS)

def test_custom_prefix_and_vendor_sign_with_x_ems_headers_accepted_by_escherauth(app, start_worker):
    verifier = escher_verifier(ACCESS_KEY_ID, EMS_SECRET, REGION, SERVICE, algo_prefix="EMS", vendor_key="Ems")
    with Receiver(handler=verifier) as receiver:
        ems_endpoint(receiver.base_url + SIGNED_TARGET)
        start_worker(env=ONE_ATTEMPT)
        event = emit("tier_change", "cust-4", {"tier": "gold"})
        message = final(event.messages[0].id)

        [request] = receiver.requests
        assert request.header("Authorization") is None
        assert re.fullmatch(r"\d{8}T\d{6}Z", request.header("X-Ems-Date"))
        assert request.header("X-Ems-Auth").startswith(f"EMS-HMAC-SHA256 Credential={ACCESS_KEY_ID}/")
        assert verifier.verdicts == [None], verifier.verdicts
        assert message.status == DONE
        assert check_escher(request, ACCESS_KEY_ID, "wrong-secret", REGION, SERVICE) is not None
        tampered = dataclasses.replace(request, body=request.body.replace(b"gold", b"platinum"))
        assert check_escher(tampered, ACCESS_KEY_ID, EMS_SECRET, REGION, SERVICE) is not None


# --------------------------------------------------------------------------- 4. AWS-S3 (moto)

def test_aws_s3_puts_the_message_at_the_formatted_key_and_moto_checks_the_signature(
        app, start_worker, s3_server, bucket):
    """moto 5 checks S3 PUT signatures (botocore's S3SigV4Auth) once reset-auth is 0;
    the wrong-secret endpoint proves it: moto itself answers 403 SignatureDoesNotMatch.

    moto does not compare the body with x-amz-content-sha256, and it stores an empty
    object for a form-encoded PUT (its WSGI layer consumes the body as a form), so the
    form variant checks key, extension and content type in moto and the body as sent.
    """
    name, bucket_url = bucket
    json_endpoint = s3_endpoint(s3_server, bucket_url, content_type="json")
    form_endpoint = s3_endpoint(s3_server, bucket_url, content_type="form")
    wrong_endpoint = s3_endpoint(s3_server, bucket_url, secret="not-the-secret")
    start_worker(env=ONE_ATTEMPT)
    customer = "Zoë Smith+1"  # the key needs encoding: space, "+", non-ASCII
    event = emit("checkout", customer, {"order": {"total": 99.5, "items": ["a", "b"]}})
    json_message = final(message_for(event, json_endpoint).id)
    form_message = final(message_for(event, form_endpoint).id)
    wrong_message = final(message_for(event, wrong_endpoint).id)

    def expected_key(message, ext: str) -> str:
        return f"webhooks/{event.created_at:%Y/%m/%d}/{customer}/checkout-{message.id}.{ext}"

    json_key, form_key = expected_key(json_message, "json"), expected_key(form_message, "txt")
    assert (json_message.status, form_message.status) == (DONE, DONE)
    assert s3_server.list_keys(name) == sorted([json_key, form_key])

    envelope = expected_envelope(event)
    [json_attempt] = attempts_of(json_message.id)
    stored_json = s3_server.get_object(name, json_key)
    assert stored_json == json_attempt.request_body.encode()
    assert json.loads(stored_json) == envelope
    assert unquote(urlsplit(json_attempt.request_url).path) == f"/{name}/{json_key}"
    json_head = s3_server.head_object(name, json_key)
    assert json_head["ContentType"] == "application/json"
    assert json_head["Metadata"] == {"webhook-id": event.id}

    # moto's WSGI layer parses a form-encoded PUT as a form and stores an empty object, so
    # the form body is checked as sent: the signed payload hash and the expected pairs.
    [form_attempt] = attempts_of(form_message.id)
    form_body = form_attempt.request_body.encode()
    assert stored_header(form_attempt, "X-Amz-Content-SHA256") == hashlib.sha256(form_body).hexdigest()
    assert dict(parse_qsl(form_body.decode())) == {
        "id": event.id, "action": "checkout", "customer": customer, "created_at": envelope["created_at"],
        "data[order][total]": "99.5", "data[order][items][0]": "a", "data[order][items][1]": "b",
    }
    assert s3_server.head_object(name, form_key)["ContentType"] == "application/x-www-form-urlencoded"

    assert wrong_message.status == FAILED and wrong_message.response_code == 403
    [wrong_attempt] = attempts_of(wrong_message.id)
    assert wrong_attempt.response_code == 403 and "SignatureDoesNotMatch" in wrong_attempt.response_body


def test_a_customer_with_dot_segments_stays_under_the_format_s_prefix_in_s3(app, start_worker, s3_server, bucket):
    name, bucket_url = bucket
    access_key_id, secret = s3_server.credentials()
    endpoint = make_endpoint(bucket_url, auth_type="aws-s3", auth_region=s3_server.region, auth_service="s3",
                             auth_access_key_id=access_key_id, secret=secret,
                             auth_filename_format="prefix/{customer}-{message_id}.{ext}")
    start_worker(env=ONE_ATTEMPT)
    hostile, dots = emit("checkout", "../../../escape", {}), emit("checkout", "..", {})
    first, second = final(message_for(hostile, endpoint).id), final(message_for(dots, endpoint).id)
    assert (first.status, second.status) == (DONE, DONE)
    assert s3_server.list_keys(name) == sorted([f"prefix/..%2F..%2F..%2Fescape-{first.id}.json",
                                                f"prefix/..-{second.id}.json"])


# --------------------------------------------------------------------------- 5. secrets stay secret

def test_secrets_are_never_stored_or_shown(app, client, start_worker, s3_server, bucket):
    _, bucket_url = bucket
    s3_secret = s3_server.credentials()[1]
    basic = basic_verifier(BASIC_USER, BASIC_PASSWORD, fail_first=1)
    aws = sigv4_verifier(ACCESS_KEY_ID, AWS_SECRET, REGION, SERVICE)
    ems = escher_verifier(ACCESS_KEY_ID, EMS_SECRET, REGION, SERVICE)
    with Receiver(handler=basic) as basic_rx, Receiver(handler=aws) as aws_rx, Receiver(handler=ems) as ems_rx:
        # Created in this order: the event's messages come back in endpoint order.
        make_endpoint(basic_rx.url, auth_type="basic", auth_username=BASIC_USER, secret=BASIC_PASSWORD)
        aws_endpoint(aws_rx.base_url + SIGNED_TARGET)
        ems_endpoint(ems_rx.base_url + SIGNED_TARGET)
        s3_endpoint(s3_server, bucket_url)
        s3_endpoint(s3_server, bucket_url, secret="wrong-" + s3_secret)  # 403 response stored too
        worker = start_worker(env={"WEBHOOKS_MAX_ATTEMPTS": "2"})
        event = emit("checkout", "cust-5", {"total": 5})
        messages = [final(m.id) for m in event.messages]
        assert [m.status for m in messages] == [DONE, DONE, DONE, DONE, FAILED]
        signatures_sent = [
            re.search(r"Signature=([0-9a-f]+)", r.header("Authorization") or r.header("X-Ems-Auth")).group(1)
            for r in aws_rx.requests + ems_rx.requests
        ]
        basic_header_sent = basic_rx.requests[0].header("Authorization")

    user_pass_b64 = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
    secrets = [BASIC_PASSWORD, AWS_SECRET, EMS_SECRET, s3_secret, "wrong-" + s3_secret, user_pass_b64]
    forbidden = {form for secret in secrets for form in (secret, json.dumps(secret)[1:-1])} | set(signatures_sent)
    assert basic_header_sent == f"Basic {user_pass_b64}", "the search term is what went on the wire"

    attempts = db.session.scalars(db.select(Attempt).order_by(Attempt.id)).all()
    assert len(attempts) == 7  # basic 500 + 200, aws, ems, s3, wrong s3 twice
    stored = [
        " ".join([a.request_url, a.request_headers_json, a.request_body, a.response_headers_json,
                  a.response_body, a.error or ""])
        for a in attempts
    ]
    token = create_token("secrets-check")
    auth = {"Authorization": f"Bearer {token}"}
    shown = [client.get("/api/v1/endpoints", headers=auth).get_data(as_text=True)]
    shown += [client.get(f"/api/v1/messages/{m.id}", headers=auth).get_data(as_text=True) for m in messages]
    assert all(json.loads(page) for page in shown)
    assert all(item["secret_stored"] for item in json.loads(shown[0]))
    columns = db.session.execute(text("SELECT auth_secret_encrypted FROM endpoint")).scalars().all()
    assert len(columns) == 5 and all(columns)
    db.session.rollback()
    places = {"stored attempts": stored, "API": shown, "worker log": [worker.output()], "secret column": columns}
    for place, texts in places.items():
        for forbidden_text in forbidden:
            assert not any(forbidden_text in t for t in texts), f"{forbidden_text!r} appears in the {place}"

    last_attempt_of = {a.message_id: a for a in attempts}
    basic_attempts = [a for a in attempts if a.message_id == messages[0].id]
    assert [stored_header(a, "Authorization") for a in basic_attempts] == ["Basic [redacted]"] * 2
    redacted_signature = re.compile(r"\S+-HMAC-SHA256 Credential=\S+, SignedHeaders=\S+, Signature=\[redacted\]")
    for message, header in zip(messages[1:], ["Authorization", "X-Ems-Auth", "Authorization", "Authorization"]):
        value = stored_header(last_attempt_of[message.id], header)
        assert value and redacted_signature.fullmatch(value), value


# --------------------------------------------------------------------------- 6. key rotation

def test_rotate_key_re_encrypts_and_deliveries_still_authenticate(app, start_worker):
    old_key = app.config["WEBHOOKS_ENCRYPTION_KEY"]
    new_key = Fernet.generate_key().decode()
    verifier = sigv4_verifier(ACCESS_KEY_ID, AWS_SECRET, REGION, SERVICE)
    with Receiver(handler=verifier) as receiver:
        endpoint = aws_endpoint(receiver.base_url + SIGNED_TARGET)
        before = endpoint.auth_secret_encrypted

        def use_keys(keys: str) -> None:
            app.config["WEBHOOKS_ENCRYPTION_KEY"] = keys
            app.extensions.pop("webhooks_secret_box", None)  # secret_box() is cached per app

        use_keys(f"{new_key},{old_key}")
        result = app.test_cli_runner().invoke(args=["rotate-key"])
        assert result.exit_code == 0, result.output
        assert "re-encrypted 1 secrets" in result.output

        db.session.expire_all()
        after = db.session.get(Endpoint, endpoint.id).auth_secret_encrypted
        db.session.rollback()
        assert after != before
        assert Fernet(new_key).decrypt(after.encode()).decode() == AWS_SECRET
        with pytest.raises(InvalidToken):
            Fernet(old_key).decrypt(after.encode())

        use_keys(new_key)
        assert secret_box().decrypt(after) == AWS_SECRET
        start_worker(env={**ONE_ATTEMPT, "WEBHOOKS_ENCRYPTION_KEY": new_key})
        event = emit("checkout", "cust-6", {"total": 6})
        assert final(event.messages[0].id).status == DONE
        assert verifier.verdicts == [None]

        use_keys(old_key)
        with pytest.raises(ValueError, match="WEBHOOKS_ENCRYPTION_KEY"):
            secret_box().decrypt(after)


# --------------------------------------------------------------------------- 7. Test button

def test_test_button_signs_like_deliveries(app):
    verifier = sigv4_verifier(ACCESS_KEY_ID, AWS_SECRET, REGION, SERVICE)
    with Receiver(handler=verifier) as receiver:
        endpoint = aws_endpoint(receiver.base_url + SIGNED_TARGET)
        result = send_test(endpoint, "tier_change")

        assert verifier.verdicts == [None]
        assert result.outcome.response_code == 200 and result.message.status == DONE
        [request] = receiver.requests
        assert request.json()["action"] == "tier_change"


def test_test_button_puts_to_s3_at_the_formatted_key(app, s3_server, bucket):
    name, bucket_url = bucket
    endpoint = s3_endpoint(s3_server, bucket_url)
    result = send_test(endpoint, "tier_change")

    assert result.outcome.response_code == 200, result.outcome.response_body
    event = result.message.event
    key = f"webhooks/{event.created_at:%Y/%m/%d}/{event.customer}/tier_change-{result.message.id}.json"
    assert json.loads(s3_server.get_object(name, key)) == expected_envelope(event)

