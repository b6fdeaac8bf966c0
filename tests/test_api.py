"""The JSON API: bearer tokens, events, messages, endpoints; every rejection names the problem."""
from __future__ import annotations

import pytest

from tests.support.factories import make_endpoint
from webapp.domain.tokens import create_token
from webapp.extensions import db
from webapp.storage.models import ApiToken, Endpoint, Event, Message

pytestmark = pytest.mark.db


@pytest.fixture
def token(app):
    return create_token("backend")


@pytest.fixture
def api(client, token):
    class Api:
        def __getattr__(self, method):
            def call(path, **kwargs):
                headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
                return getattr(client, method)(f"/api/v1{path}", headers=headers, **kwargs)
            return call
    return Api()


def counts():
    return (
        db.session.scalar(db.select(db.func.count()).select_from(Event)),
        db.session.scalar(db.select(db.func.count()).select_from(Message)),
    )


def test_tokens_are_stored_hashed(app, token):
    stored = db.session.scalars(db.select(ApiToken)).one()
    assert token not in stored.token_hash and len(stored.token_hash) == 64


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ", "Basic abc", "Bearer whk_wrong"])
def test_missing_or_bad_token_is_401(client, token, header):
    headers = {"Authorization": header} if header is not None else {}
    response = client.post("/api/v1/events", json={"action": "a", "customer": "c", "data": {}}, headers=headers)
    assert response.status_code == 401
    assert "token" in response.get_json()["error"]
    assert counts() == (0, 0)


def test_post_event_answers_202_with_event_and_message_ids(app, api):
    endpoint = make_endpoint("http://127.0.0.1:9/hook", actions=["checkout"])
    response = api.post("/events", json={"action": "checkout", "customer": "c1", "data": {"total": 5}})
    assert response.status_code == 202
    body = response.get_json()
    message = db.session.get(Message, body["message_ids"][0])
    assert message.event_id == body["event_id"] and message.endpoint_id == endpoint.id

    shown = api.get(f"/messages/{message.id}").get_json()
    assert shown["status"] == "queued" and shown["attempts"] == 0 and shown["response_code"] is None
    assert shown["event_id"] == body["event_id"]


@pytest.mark.parametrize(
    "payload, status, field, fragment",
    [
        ({"action": "checkout", "customer": "c1", "data": {}, "extra": 1}, 400, "extra", "unknown field"),
        ({"customer": "c1", "data": {}}, 400, "action", "is required"),
        ({"action": "", "customer": "c1", "data": {}}, 400, "action", "must not be empty"),
        ({"action": 5, "customer": "c1", "data": {}}, 400, "action", "must be a string"),
        ({"action": "checkout", "customer": ["c1"], "data": {}}, 400, "customer", "must be a string"),
        ({"action": "checkout", "customer": "c1", "data": [1, 2]}, 400, "data", "JSON object"),
        ({"action": "checkout", "customer": "c1", "data": "x"}, 400, "data", "JSON object"),
        (5, 400, "body", "must be a JSON object (an event) or a list of them, got int"),
        ("checkout", 400, "body", "got str"),
    ],
)
def test_bad_event_bodies_are_rejected_naming_the_field(app, api, payload, status, field, fragment):
    make_endpoint("http://127.0.0.1:9/hook")
    response = api.post("/events", json=payload)
    assert response.status_code == status
    body = response.get_json()
    assert body["field"] == field and fragment in body["error"]
    assert counts() == (0, 0)


def test_invalid_json_and_wrong_content_type(app, api):
    response = api.post("/events", data="{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.get_json()["error"]
    response = api.post("/events", data="action=checkout", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415 and "application/json" in response.get_json()["error"]
    assert counts() == (0, 0)


def test_body_over_the_size_limit_is_413(app, api):
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = api.post("/events", json={"action": "checkout", "customer": "c1", "data": {"x": "y" * limit}})
    assert response.status_code == 413
    assert "limit" in response.get_json()["error"]
    assert counts() == (0, 0)


def test_unknown_message_is_404(api):
    response = api.get("/messages/999999")
    assert response.status_code == 404 and "not found" in response.get_json()["error"]


def test_endpoint_crud_with_form_validation_and_write_only_secrets(app, api):
    created = api.post("/endpoints", json={
        "url": "https://hooks.example.com/in", "actions": ["checkout", "opt_in"], "timeout": 5,
        "auth_type": "basic", "username": "shop", "password": "s3cret-pass",
    })
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["timeout"] == 5 and body["auth_type"] == "basic" and body["secret_stored"] is True
    assert "password" not in body and "s3cret-pass" not in created.get_data(as_text=True)
    stored = db.session.get(Endpoint, body["id"])
    assert "s3cret-pass" not in stored.auth_secret_encrypted

    patched = api.patch(f"/endpoints/{body['id']}", json={"timeout": None, "content_type": "form"})
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["timeout"] == 1, "blank timeout means the 1 s default"
    assert patched.get_json()["secret_stored"] is True, "a blank secret keeps the stored one"

    listed = api.get("/endpoints").get_json()
    assert [e["id"] for e in listed] == [body["id"]]
    assert api.delete(f"/endpoints/{body['id']}").status_code == 204
    assert api.get(f"/endpoints/{body['id']}").status_code == 404
    assert api.get("/endpoints").get_json() == []


@pytest.mark.parametrize(
    "changes, field, fragment",
    [
        ({"timeout": 0}, "timeout", "between 1 and 60"),
        ({"timeout": 61}, "timeout", "between 1 and 60"),
        ({"timeout": "abc"}, "timeout", "whole number"),
        ({"timeout": 1.5}, "timeout", "whole number"),
        ({"url": "ftp://x.example.com"}, "url", "http"),
        ({"url": ""}, "url", "required"),
        ({"url": "https://user:pw@x.example.com/"}, "url", "credentials"),
        ({"actions": ["no_such_action"]}, "actions", "Not a valid choice"),
        ({"actions": []}, "actions", "at least one"),
        ({"actions": "checkout"}, "actions", "list"),
        ({"content_type": "xml"}, "content_type", "Not a valid choice"),
        ({"threads": 0}, "threads", "between 1 and 64"),
        ({"threads": 65}, "threads", "between 1 and 64"),
        ({"threads": "8"}, "threads", "whole number"),
        ({"use_proxy": True}, "use_proxy", "no static-IP proxy"),
        ({"use_proxy": "yes"}, "use_proxy", "true or false"),
        ({"auth_type": "basic"}, "username", "required for Basic"),
        ({"auth_type": "basic", "username": "u"}, "password", "required for Basic"),
        ({"auth_type": "aws", "region": "eu-west-1", "service": "execute-api", "access_key_id": "AKID"},
         "secret_key", "required for AWS"),
        ({"auth_type": "aws-s3", "region": "eu-west-1", "service": "s3", "access_key_id": "AKID",
          "secret_key": "x", "filename_format": "{nope}.json"}, "filename_format", "unknown placeholder {nope}"),
        ({"auth_type": "oauth"}, "auth_type", "Not a valid choice"),
        ({"bogus": 1}, "bogus", "unknown field"),
    ],
)
def test_endpoint_validation_names_the_field(app, api, changes, field, fragment):
    payload = {"url": "https://hooks.example.com/in", "actions": ["checkout"], **changes}
    response = api.post("/endpoints", json=payload)
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["field"] == field, body
    assert fragment.lower() in body["error"].lower(), body
    assert db.session.scalar(db.select(db.func.count()).select_from(Endpoint)) == 0


def test_private_targets_are_refused_unless_the_installation_allows_them(app, api):
    app.config["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = False
    for url in ("http://127.0.0.1:8080/x", "http://localhost/x", "http://169.254.169.254/latest",
                "http://10.1.2.3/", "http://[::ffff:127.0.0.1]/", "http://[::1]/"):
        response = api.post("/endpoints", json={"url": url, "actions": ["checkout"]})
        assert response.status_code == 400 and response.get_json()["field"] == "url", url
        assert "not allowed" in response.get_json()["error"]
    app.config["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = True
    assert api.post("/endpoints", json={"url": "http://127.0.0.1:8080/x", "actions": ["checkout"]}).status_code == 201


def test_a_stored_basic_password_is_not_taken_for_an_aws_secret(app, api):
    created = api.post("/endpoints", json={"url": "https://hooks.example.com/in", "actions": ["checkout"],
                                          "auth_type": "basic", "username": "u", "password": "pw-123456"}).get_json()
    response = api.patch(f"/endpoints/{created['id']}", json={
        "auth_type": "aws", "region": "eu-west-1", "service": "execute-api", "access_key_id": "AKID"})
    assert response.status_code == 400
    assert response.get_json()["field"] == "secret_key"
    switched = api.patch(f"/endpoints/{created['id']}", json={
        "auth_type": "aws", "region": "eu-west-1", "service": "execute-api", "access_key_id": "AKID",
        "secret_key": "aws-secret"})
    assert switched.status_code == 200
    back_to_s3 = api.patch(f"/endpoints/{created['id']}", json={"auth_type": "aws-s3", "filename_format": "{event_id}.{ext}"})
    assert back_to_s3.status_code == 200 and back_to_s3.get_json()["secret_stored"], "an AWS secret serves AWS-S3 too"
