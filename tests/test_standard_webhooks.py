"""Standard Webhooks signatures end to end: real worker, a real receiver on 127.0.0.1, and every
delivered request verified by the ``standardwebhooks`` package and by ``svix``'s verifier
(tests/support/verifying_receivers.py), never by our own signer."""
from __future__ import annotations

import base64
import datetime as dt
import json
import re

import pytest
from cryptography.fernet import Fernet, InvalidToken
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks.exceptions import WebhookVerificationError
from svix.webhooks import Webhook as SvixWebhook

from tests.support.factories import attempts_of, final, make_endpoint
from tests.support.receiver import Receiver
from tests.support.verifying_receivers import (
    check_standard_webhooks,
    standard_webhooks_verifier,
)
from webapp.delivery.outgoing import build_request
from webapp.delivery.target import Target
from webapp.domain import signing_secrets
from webapp.domain.events import emit
from webapp.domain.logbook.resend import resend
from webapp.extensions import db
from webapp.signing import standard_webhooks
from webapp.signing.request import MessageContent
from webapp.storage.crypto import secret_box
from webapp.storage.models import Endpoint, utcnow
from webapp.storage.statuses import DONE

pytestmark = pytest.mark.db

OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()
NEW = "whsec_" + base64.b64encode(bytes(range(40))).decode()


def hmac_endpoint(url: str, secret: str = OLD, **settings) -> Endpoint:
    return make_endpoint(url, auth_type="hmac", secret=secret, **settings)


def signatures(request) -> list[str]:
    return request.header("webhook-signature").split(" ")


def accepted_by(secret: str, body: bytes, headers: dict) -> bool:
    """Both libraries agree, either way."""
    verdicts = []
    for verify in (lambda: StandardWebhook(secret).verify(body, headers, json_parse=False),
                   lambda: SvixWebhook(secret).verify(body, headers)):
        try:
            verify()
            verdicts.append(True)
        except WebhookVerificationError:
            verdicts.append(False)
    assert verdicts[0] == verdicts[1], verdicts
    return verdicts[0]


def only(request, signature: str) -> dict:
    """The request's headers with one of its signatures."""
    return {**dict(request.headers), "webhook-signature": signature}


@pytest.mark.parametrize("content_type", ["json", "form"])
def test_every_attempt_and_resend_verifies_with_standardwebhooks_and_svix(app, start_worker, content_type):
    verifier = standard_webhooks_verifier(OLD, fail_first=1)
    with Receiver(handler=verifier) as receiver:
        hmac_endpoint(receiver.url, content_type=content_type)
        start_worker()
        event = emit("checkout", "cust-1", {"total": 12.5, "note": "ünïcödé & = ?"})
        message = final(event.messages[0].id)
        assert message.status == DONE and message.attempts == 2, [(a.response_code, a.response_body, a.error) for a in attempts_of(message.id)]
        copy = resend(message).message
        assert final(copy.id).status == DONE
        requests = receiver.wait_for(3)

    assert verifier.verdicts == [None, None, None], "both libraries accept every attempt and the resend"
    for request in requests:
        names = [name.lower() for name, _ in request.headers]
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            assert names.count(name) == 1, f"{name} sent once"
        assert request.header("webhook-id") == event.id, "stable across retries and resends"
        assert re.fullmatch(r"[0-9]{10}", request.header("webhook-timestamp"))
        assert len(signatures(request)) == 1
        assert request.header("content-type").startswith("application/json" if content_type == "json"
                                                          else "application/x-www-form-urlencoded")
    # The verifier is no rubber stamp: another secret is refused.
    assert check_standard_webhooks(requests[0], NEW).startswith("standardwebhooks: No matching signature")
    stored = [dict(json.loads(a.request_headers_json)) for a in attempts_of(message.id)]
    assert [headers["Webhook-Signature"] for headers in stored] == ["v1,[redacted]"] * 2


def test_tampered_body_wrong_secret_and_stale_timestamp_are_refused(app):
    with Receiver() as receiver:
        endpoint = hmac_endpoint(receiver.url)
    target = Target.from_endpoint(endpoint, None)
    content = MessageContent(1, 1, "evt_123", "checkout", "cust", utcnow(), '{"total":1}')  # as emit stores it

    fresh = build_request(target, content, utcnow())
    headers = dict(fresh.headers)
    assert accepted_by(OLD, fresh.body, headers), "the untouched request is accepted"
    tampered = fresh.body.replace(b'"total":1', b'"total":9')
    assert tampered != fresh.body
    assert not accepted_by(OLD, tampered, headers)
    assert not accepted_by(NEW, fresh.body, headers)
    assert not accepted_by(OLD, fresh.body, {**headers, "Webhook-Id": "evt_other"})

    stale = build_request(target, content, utcnow() - dt.timedelta(minutes=6))
    with pytest.raises(WebhookVerificationError, match="too old"):
        StandardWebhook(OLD).verify(stale.body, dict(stale.headers), json_parse=False)
    with pytest.raises(WebhookVerificationError, match="too old"):
        SvixWebhook(OLD).verify(stale.body, dict(stale.headers))


def test_rotation_signs_with_both_secrets_newest_first_until_the_window_ends(app, start_worker):
    with Receiver() as receiver:
        endpoint = hmac_endpoint(receiver.url, content_type="form")
        start_worker()
        assert signing_secrets.rotate(endpoint, NEW, window_hours=24) == NEW
        db.session.commit()
        assert signing_secrets.window_end(endpoint) > utcnow() + dt.timedelta(hours=23)

        during = final(emit("checkout", "cust-2", {"n": 1}).messages[0].id)
        assert during.status == DONE
        [request] = receiver.wait_for(1)
        new_first, old_second = signatures(request)
        assert accepted_by(NEW, request.body, only(request, new_first)), "newest first"
        assert accepted_by(OLD, request.body, only(request, old_second))
        assert not accepted_by(OLD, request.body, only(request, new_first))
        assert check_standard_webhooks(request, NEW) is None and check_standard_webhooks(request, OLD) is None
        [attempt] = attempts_of(during.id)
        assert dict(json.loads(attempt.request_headers_json))["Webhook-Signature"] == "v1,[redacted] v1,[redacted]"

        # The window ends (moved into the past rather than waited for; updated_at tells workers the row
        # changed, as any edit does): only the new secret signs.
        endpoint = db.session.get(Endpoint, endpoint.id)
        endpoint.auth_previous_secret_until = endpoint.updated_at = utcnow() - dt.timedelta(seconds=1)
        db.session.commit()
        assert signing_secrets.window_end(endpoint) is None
        after = final(emit("checkout", "cust-3", {"n": 2}).messages[0].id)
        assert after.status == DONE
        copy = resend(after).message
        assert final(copy.id).status == DONE
        for request in receiver.wait_for(3)[1:]:
            assert len(signatures(request)) == 1
            assert check_standard_webhooks(request, NEW) is None
            assert check_standard_webhooks(request, OLD) is not None, "the old secret no longer verifies"


def test_secrets_are_generated_whsec_and_checked():
    for _ in range(20):
        secret = standard_webhooks.new_secret()
        assert secret.startswith("whsec_") and 24 <= len(base64.b64decode(secret[6:])) <= 64
        StandardWebhook(secret)  # the library takes it as it is
    assert standard_webhooks.new_secret() != standard_webhooks.new_secret()
    for bad, problem in [("sk_abc", "must start with whsec_"), ("whsec_***", "standard base64"),
                         ("whsec_" + base64.b64encode(b"x" * 23).decode(), "24 to 64 bytes"),
                         ("whsec_" + base64.b64encode(b"x" * 65).decode(), "24 to 64 bytes")]:
        with pytest.raises(ValueError, match=problem):
            standard_webhooks.check_secret(bad)
    assert re.fullmatch(r"[0-9a-f]{4}(:[0-9a-f]{4}){3}", standard_webhooks.fingerprint(OLD))
    assert standard_webhooks.fingerprint(OLD) != standard_webhooks.fingerprint(NEW)


def test_rotate_key_re_encrypts_signing_secrets_and_secret_headers(app):
    endpoint = hmac_endpoint("http://127.0.0.1:9/hook")
    endpoint.custom_headers = [{"name": "X-Api-Key", "value": secret_box().encrypt("header-value"), "secret": True},
                               {"name": "X-Tenant", "value": "acme", "secret": False}]
    signing_secrets.rotate(endpoint, NEW, window_hours=24)
    db.session.commit()
    old_key = app.config["WEBHOOKS_ENCRYPTION_KEY"]
    new_key = Fernet.generate_key().decode()
    app.config["WEBHOOKS_ENCRYPTION_KEY"] = f"{new_key},{old_key}"
    app.extensions.pop("webhooks_secret_box", None)  # secret_box() is cached per app
    try:
        result = app.test_cli_runner().invoke(args=["rotate-key"])
        assert result.exit_code == 0 and "re-encrypted 3 secrets" in result.output, result.output
        db.session.expire_all()
        endpoint = db.session.get(Endpoint, endpoint.id)
        tokens = [endpoint.auth_secret_encrypted, endpoint.auth_previous_secret_encrypted,
                  endpoint.custom_headers[0]["value"]]
        assert [Fernet(new_key).decrypt(t.encode()).decode() for t in tokens] == [NEW, OLD, "header-value"]
        for token in tokens:
            with pytest.raises(InvalidToken):
                Fernet(old_key).decrypt(token.encode())
        assert endpoint.custom_headers[1]["value"] == "acme", "a plain value stays as it is"
    finally:
        app.config["WEBHOOKS_ENCRYPTION_KEY"] = old_key
        app.extensions.pop("webhooks_secret_box", None)
