"""Standard Webhooks secrets in the settings page and the API: paste, generate (shown once), write-only,
rotate with a window shown on the page; the Test button's signature headers and "how to verify" note."""
from __future__ import annotations

import base64
import re

import pytest

from tests.support.receiver import Receiver
from tests.support.verifying_receivers import check_standard_webhooks
from tests.test_settings import VALID, endpoints, field_errors, html
from webapp.domain.tokens import create_token
from webapp.signing import standard_webhooks
from webapp.storage.crypto import secret_box

pytestmark = pytest.mark.db

SECRET = "whsec_" + base64.b64encode(b"partner-secret-bytes-0123456789").decode()
HMAC = {**VALID, "auth_type": "hmac"}


def stored_secret(endpoint) -> str:
    return secret_box().decrypt(endpoint.auth_secret_encrypted)


def test_a_pasted_secret_is_stored_encrypted_and_never_shown_again(operator):
    assert operator.post("/settings/new", {**HMAC, "signing_secret": SECRET}).status_code == 302
    [endpoint] = endpoints()
    assert endpoint.auth_type == "hmac" and stored_secret(endpoint) == SECRET
    assert SECRET not in endpoint.auth_secret_encrypted
    page = html(operator.get(f"/settings/{endpoint.id}"))
    assert SECRET not in page and "stored — leave blank to keep" in page
    assert standard_webhooks.fingerprint(SECRET) in page, "the page names the secret by its fingerprint"
    # A blank secret keeps the stored one.
    assert operator.post(f"/settings/{endpoint.id}", {**HMAC, "name": "Renamed"}).status_code == 302
    [endpoint] = endpoints()
    assert endpoint.name == "Renamed" and stored_secret(endpoint) == SECRET


@pytest.mark.parametrize("secret, problem", [
    ("", "Signing secret is required for HMAC signature (Standard Webhooks) authentication"),
    ("sk_live_123", "Signing secret must start with whsec_"),
    ("whsec_not base64!", "standard base64"),
    ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes"),
])
def test_a_bad_secret_is_refused_naming_the_field_and_nothing_is_saved(operator, secret, problem):
    response = operator.post("/settings/new", {**HMAC, "signing_secret": secret})
    assert response.status_code == 422 and endpoints() == []
    [error] = field_errors(html(response), "signing_secret")
    assert problem in error
    assert secret not in html(response) or not secret


def test_generate_shows_a_secret_once_and_save_stores_it(operator):
    response = operator.post("/settings/generate-secret", htmx=True)
    assert response.status_code == 200
    generated = re.search(r'value="(whsec_[A-Za-z0-9+/=]+)"', html(response)).group(1)
    standard_webhooks.check_secret(generated)
    assert 'data-copy="#signing_secret-new"' in html(response) and "Shown this once" in html(response)
    assert operator.post("/settings/new", {**HMAC, "signing_secret": generated}).status_code == 302
    [endpoint] = endpoints()
    assert stored_secret(endpoint) == generated
    assert generated not in html(operator.get(f"/settings/{endpoint.id}"))


def test_rotate_on_the_page_shows_the_new_secret_once_and_the_window(operator):
    operator.post("/settings/new", {**HMAC, "signing_secret": SECRET})
    [endpoint] = endpoints()
    response = operator.post(f"/settings/{endpoint.id}/rotate-secret", {"window_hours": "48"})
    assert response.status_code == 200
    page = html(response)
    new = re.search(r'value="(whsec_[A-Za-z0-9+/=]+)"', page).group(1)
    [endpoint] = endpoints()
    assert stored_secret(endpoint) == new and secret_box().decrypt(endpoint.auth_previous_secret_encrypted) == SECRET
    assert "Rotation window" in page and SECRET not in page
    assert f'value="{VALID["url"]}"' in page, "the settings form below shows the saved settings"
    later = html(operator.get(f"/settings/{endpoint.id}"))
    assert new not in later and SECRET not in later, "shown once"
    assert "Rotation window" in later and endpoint.auth_previous_secret_until.strftime("%Y-%m-%d %H:%M") in later
    fingerprints = re.findall(r"<code>([0-9a-f]{4}(?::[0-9a-f]{4}){3})</code>", later)
    assert fingerprints[:2] == [standard_webhooks.fingerprint(new), standard_webhooks.fingerprint(SECRET)]


@pytest.mark.parametrize("hours", ["-1", "721", "1.5", "٣", "abc"])
def test_a_bad_window_is_refused_and_nothing_rotates(operator, hours):
    operator.post("/settings/new", {**HMAC, "signing_secret": SECRET})
    [endpoint] = endpoints()
    response = operator.post(f"/settings/{endpoint.id}/rotate-secret", {"window_hours": hours})
    assert response.status_code == 422 and "Not rotated: “Old secret valid for (hours)” must be a whole number of hours from 0 to 720" in html(response)
    [endpoint] = endpoints()
    assert stored_secret(endpoint) == SECRET and endpoint.auth_previous_secret_encrypted is None


def test_a_bad_pasted_secret_or_another_type_does_not_rotate(operator):
    operator.post("/settings/new", {**HMAC, "signing_secret": SECRET})
    [endpoint] = endpoints()
    response = operator.post(f"/settings/{endpoint.id}/rotate-secret", {"new_secret": "whsec_" + base64.b64encode(b"short").decode()})
    assert response.status_code == 422 and "Not rotated: the new secret must hold 24 to 64 bytes" in html(response)
    [endpoint] = endpoints()
    assert stored_secret(endpoint) == SECRET and endpoint.auth_previous_secret_encrypted is None
    operator.post(f"/settings/{endpoint.id}", {**VALID})  # no authentication any more
    response = operator.post(f"/settings/{endpoint.id}/rotate-secret", {})
    assert response.status_code == 422 and "Not rotated: only an endpoint with a stored" in html(response)


def test_api_creates_rotates_and_never_shows_secrets(app, client):
    auth = {"Authorization": f"Bearer {create_token('sw')}"}
    body = {"url": "http://127.0.0.1:9/hook", "actions": ["checkout"], "auth_type": "hmac"}
    refused = client.post("/api/v1/endpoints", json={**body, "signing_secret": "whsec_abc"}, headers=auth)
    assert refused.status_code == 400 and refused.json["field"] == "signing_secret"
    created = client.post("/api/v1/endpoints", json={**body, "signing_secret": SECRET}, headers=auth)
    assert created.status_code == 201, created.json
    assert created.json["secret_stored"] and created.json["previous_secret_valid_until"] is None
    assert SECRET not in created.get_data(as_text=True)
    endpoint_id = created.json["id"]

    rotated = client.post(f"/api/v1/endpoints/{endpoint_id}/rotate-secret", json={"window_hours": 2}, headers=auth)
    assert rotated.status_code == 200, rotated.json
    new = rotated.json["secret"]
    standard_webhooks.check_secret(new)
    assert rotated.json["fingerprints"] == [standard_webhooks.fingerprint(new), standard_webhooks.fingerprint(SECRET)]
    shown = client.get(f"/api/v1/endpoints/{endpoint_id}", headers=auth)
    assert shown.json["previous_secret_valid_until"] == rotated.json["previous_secret_valid_until"]
    assert new not in shown.get_data(as_text=True) and SECRET not in shown.get_data(as_text=True)

    given = client.post(f"/api/v1/endpoints/{endpoint_id}/rotate-secret", json={"secret": SECRET, "window_hours": 0},
                        headers=auth)
    assert given.json["secret"] is None and given.json["previous_secret_valid_until"] is None
    bad = client.post(f"/api/v1/endpoints/{endpoint_id}/rotate-secret", json={"window_hours": "24"}, headers=auth)
    assert bad.status_code == 400 and bad.json["field"] == "window_hours"
    none_type = client.post("/api/v1/endpoints", json={**body, "auth_type": "none"}, headers=auth).json["id"]
    refused = client.post(f"/api/v1/endpoints/{none_type}/rotate-secret", headers=auth)
    assert refused.status_code == 400 and refused.json["field"] == "auth_type"


def test_test_button_shows_the_signature_headers_and_how_to_verify(operator):
    with Receiver() as receiver:
        operator.post("/settings/new", {**HMAC, "url": receiver.url, "signing_secret": SECRET})
        [endpoint] = endpoints()
        response = operator.post(f"/settings/{endpoint.id}/test", {"action": "checkout"}, htmx=True)
        [request] = receiver.requests
    page = html(response)
    assert response.status_code == 200 and check_standard_webhooks(request, SECRET) is None
    assert "Signature headers sent" in page and "How to verify" in page
    assert f"<th scope=\"row\">Webhook-Id</th><td>{request.header('webhook-id')}</td>" in page
    assert "<th scope=\"row\">Webhook-Signature</th><td>v1,[redacted]</td>" in page
    assert standard_webhooks.fingerprint(SECRET) in page and SECRET not in page
