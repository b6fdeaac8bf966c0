"""Custom headers per endpoint: set in the settings form or the API, sent on every attempt (signed by AWS
too), refused with a precise message when the product or the connection owns the header; a secret
value is write-only, encrypted and redacted in the log."""
from __future__ import annotations

import json

import pytest

from tests.support.factories import attempts_of, final
from tests.support.receiver import Receiver
from tests.test_settings import VALID, endpoints, html
from webapp.domain.events import emit
from webapp.domain.tokens import create_token
from webapp.storage.crypto import secret_box

pytestmark = pytest.mark.db

API_KEY = "key-Unique-9f3e-secret"


def rows(*headers) -> dict:
    """Form fields of header rows: (name, value, secret?)."""
    data = {}
    for number, (name, value, secret) in enumerate(headers):
        data[f"custom_headers-{number}-name"] = name
        data[f"custom_headers-{number}-value"] = value
        if secret:
            data[f"custom_headers-{number}-secret"] = "y"
    return data


def test_headers_go_out_on_every_attempt_and_a_secret_value_stays_secret(app, operator, start_worker):
    with Receiver(fail_first=1) as receiver:
        response = operator.post("/settings/new", {**VALID, "url": receiver.url,
                                                   **rows(("X-Tenant", "acme", False), ("X-Api-Key", API_KEY, True))})
        assert response.status_code == 302, html(response)
        [endpoint] = endpoints()
        assert API_KEY not in endpoint.custom_headers_json
        assert secret_box().decrypt(endpoint.custom_headers[1]["value"]) == API_KEY
        start_worker()
        message = final(emit("checkout", "c1", {"n": 1}).messages[0].id)
        first, second = receiver.wait_for(2)

    for request in (first, second):
        assert request.header("X-Tenant") == "acme" and request.header("X-Api-Key") == API_KEY
    stored = [dict(json.loads(a.request_headers_json)) for a in attempts_of(message.id)]
    assert [(h["X-Tenant"], h["X-Api-Key"]) for h in stored] == [("acme", "[redacted]")] * 2
    page = html(operator.get(f"/settings/{endpoint.id}"))
    assert API_KEY not in page and "acme" in page and "stored — leave blank to keep" in page
    assert API_KEY not in html(operator.get(f"/log/{message.id}"))

    # Saving with the secret value left blank keeps it; emptying a row removes its header.
    kept = operator.post(f"/settings/{endpoint.id}", {**VALID, "url": receiver.url,
                                                      **rows(("", "", False), ("X-Api-Key", "", True))})
    assert kept.status_code == 302, html(kept)
    [endpoint] = endpoints()
    assert [h["name"] for h in endpoint.custom_headers] == ["X-Api-Key"]
    assert secret_box().decrypt(endpoint.custom_headers[0]["value"]) == API_KEY


@pytest.mark.parametrize("auth, name, value, problem", [
    ({}, "Host", "x", "Host is a hop-by-hop or framing header"),
    ({}, "Content-Length", "1", "Content-Length is a hop-by-hop or framing header"),
    ({}, "Transfer-Encoding", "chunked", "hop-by-hop or framing"),
    ({}, "Connection", "close", "hop-by-hop or framing"),
    ({}, "Webhook-Signature", "v1,x", "Webhook-Signature is set by the product"),
    ({}, "content-type", "text/plain", "set by the product"),
    ({"auth_type": "basic", "username": "u", "password": "p"}, "Authorization", "x", "set by Basic authentication"),
    ({"auth_type": "aws", "region": "eu-west-1", "service": "execute-api", "access_key_id": "AK",
      "secret_key": "s", "algo_prefix": "EMS", "vendor_key": "Ems"}, "X-Ems-Date", "x", "set by AWS authentication"),
    ({"auth_type": "aws-s3", "region": "eu-west-1", "service": "s3", "access_key_id": "AK", "secret_key": "s",
      "filename_format": "{event_id}.{ext}"}, "X-Amz-Content-SHA256", "x", "set by AWS-S3 authentication"),
    ({}, "Bad Name", "x", "name must be letters, digits"),
    ({}, "X-Colon:", "x", "name must be letters, digits"),
    ({}, "X-Split", "a\r\nX-Injected: 1", "value must be printable ASCII without line breaks"),
    ({}, "X-Ctl", "a\x01b", "U+0001"),
    ({}, "X-Utf8", "café", "U+00E9"),
    ({}, "X-Empty", "", "needs a value"),
    ({}, "", "orphan", "needs a name"),
])
def test_refused_headers_name_the_problem_and_nothing_is_saved(operator, auth, name, value, problem):
    response = operator.post("/settings/new", {**VALID, **auth, **rows((name, value, False))})
    page = html(response)
    assert response.status_code == 422 and endpoints() == []
    assert 'id="custom_headers-error"' in page and problem in page, page[page.find("field-error"):][:300]


def test_authorization_is_allowed_when_no_auth_type_sets_it_and_duplicates_are_refused(operator):
    duplicate = operator.post("/settings/new", {**VALID, **rows(("X-A", "1", False), ("x-a", "2", False))})
    assert duplicate.status_code == 422 and "is a second header of that name" in html(duplicate)
    assert operator.post("/settings/new", {**VALID, **rows(("Authorization", "Bearer t", True))}).status_code == 302


def test_the_api_sets_shows_and_keeps_headers(app, client):
    auth = {"Authorization": f"Bearer {create_token('headers')}"}
    body = {"url": "http://127.0.0.1:9/hook", "actions": ["checkout"],
            "custom_headers": [{"name": "X-Tenant", "value": "acme"}, {"name": "X-Api-Key", "value": API_KEY,
                                                                        "secret": True}]}
    created = client.post("/api/v1/endpoints", json=body, headers=auth)
    assert created.status_code == 201, created.json
    assert created.json["custom_headers"] == [{"name": "X-Tenant", "value": "acme", "secret": False},
                                              {"name": "X-Api-Key", "value": "", "secret": True}]
    assert API_KEY not in created.get_data(as_text=True)
    url = f"/api/v1/endpoints/{created.json['id']}"
    patched = client.patch(url, json={"name": "Renamed"}, headers=auth)
    assert patched.status_code == 200 and patched.json["custom_headers"] == created.json["custom_headers"]
    [endpoint] = endpoints()
    assert secret_box().decrypt(endpoint.custom_headers[1]["value"]) == API_KEY

    for bad, problem in [([{"name": "Host", "value": "x"}], "hop-by-hop"),
                         ([{"name": "X-A", "value": "a\nb"}], "line breaks"),
                         ([{"name": "X-A", "value": "v", "colour": "red"}], "unknown key 'colour'"),
                         ([{"name": 5, "value": "v"}], "name must be a string"),
                         ({"X-A": "v"}, "must be a list"),
                         ([{"name": f"X-{i}", "value": "v"} for i in range(21)], "at most 20 headers")]:
        refused = client.patch(url, json={"custom_headers": bad}, headers=auth)
        assert refused.status_code == 400 and refused.json["field"] == "custom_headers", refused.json
        assert problem in refused.json["error"]
    [endpoint] = endpoints()
    assert [h["name"] for h in endpoint.custom_headers] == ["X-Tenant", "X-Api-Key"], "nothing was written"
