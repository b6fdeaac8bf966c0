"""The OpenAPI document at /api/v1/openapi.json: complete, valid, and what the live API does.

- every API route and method is in it, and a route without a description stops the app;
- a round trip through every operation answers bodies that match the document exactly
  (additionalProperties false), so a field added to an answer must be added to it too;
- schemathesis drives the live app (a real HTTP server on 127.0.0.1) from the document with
  its checks on: no server error, status codes, content types and bodies as documented,
  schema-invalid input refused, 401 without the token, 405 with Allow for other methods.
"""
from __future__ import annotations

import re

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings

from tests.support.factories import make_endpoint
from tests.support.live_server import LiveServer
from webapp.domain.events import emit
from webapp.domain.tokens import create_token
from webapp.extensions import db
from webapp.storage.models import Message
from webapp.web import api
from webapp.web.openapi import UndocumentedRoute, check_documented

pytestmark = pytest.mark.db


@pytest.fixture
def document(client):
    response = client.get("/api/v1/openapi.json")  # public: no token needed
    assert response.status_code == 200 and response.is_json
    return response.get_json()


def test_every_api_route_and_method_is_in_the_document(app, document):
    served = {(re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule), method.lower())
              for rule in app.url_map.iter_rules() if rule.endpoint.startswith("api.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert served == documented
    assert len(served) >= 9


def test_an_api_route_without_a_description_stops_the_app(app):
    from webapp import create_app

    fresh = create_app({"TESTING": True})
    fresh.add_url_rule("/api/v1/secret-door", endpoint="api.secret_door", view_func=lambda: "")
    with pytest.raises(UndocumentedRoute, match="/api/v1/secret-door"):
        check_documented(fresh)


def test_request_fields_in_the_document_are_the_ones_the_api_reads(app, document):
    from webapp.web.api_fields import ENDPOINT_FIELDS

    schemas = document["components"]["schemas"]
    assert set(schemas["NewEndpoint"]["properties"]) == set(ENDPOINT_FIELDS)
    assert set(schemas["Endpoint"]["properties"]) == set(ENDPOINT_FIELDS) - {"password", "secret_key", "signing_secret"} | {
        "id", "secret_stored", "previous_secret_valid_until", "health"}
    assert set(schemas["Event"]["properties"]) == api.EVENT_FIELDS
    assert set(schemas["Resend"]["properties"]) == api.RESEND_FIELDS
    assert schemas["Event"]["properties"]["action"]["enum"] == list(app.config["WEBHOOKS_ACTIONS"])
    timeout = schemas["NewEndpoint"]["properties"]["timeout"]
    assert (timeout["minimum"], timeout["maximum"]) == (1, 60)


# A round trip through every operation, each answer checked against the document


def resolved(node, document):
    """The schema with its $refs replaced by what they point at (the document has no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[1]
            return resolved(document["components"]["schemas"][name], document)
        return {key: resolved(value, document) for key, value in node.items()}
    if isinstance(node, list):
        return [resolved(item, document) for item in node]
    return node


class CheckedApi:
    """Calls the API and checks every answer against the operation's documented answer for its status."""

    def __init__(self, client, document, token):
        self.client, self.document, self.token = client, document, token
        self.seen: set[tuple[str, str, int]] = set()

    def __call__(self, method: str, path: str, template: str, status: int, **kwargs):
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        response = self.client.open(path, method=method.upper(), headers=headers, **kwargs)
        assert response.status_code == status, (method, path, response.get_data(as_text=True))
        documented = self.document["paths"][template][method]["responses"]
        assert str(status) in documented, f"{method} {template} answered {status}, not documented"
        content = documented[str(status)].get("content")
        if content is None:
            assert response.get_data() == b""
        else:
            assert response.is_json
            schema = resolved(content["application/json"]["schema"], self.document)
            jsonschema.validate(response.get_json(), schema, cls=jsonschema.Draft202012Validator,
                                format_checker=jsonschema.FormatChecker())
        self.seen.add((method, template, status))
        return response.get_json() if response.is_json else None


def test_every_operation_answers_what_the_document_says(app, client, document):
    call = CheckedApi(client, document, create_token("round-trip"))
    settings_ = {"url": "http://127.0.0.1:9/hook", "actions": ["checkout"], "auth_type": "basic",
                 "username": "shop", "password": "a secret 1", "timeout": 5, "name": "Shop"}
    created = call("post", "/api/v1/endpoints", "/api/v1/endpoints", 201, json=settings_)
    endpoint = f"/api/v1/endpoints/{created['id']}"
    call("get", endpoint, "/api/v1/endpoints/{endpoint_id}", 200)
    call("patch", endpoint, "/api/v1/endpoints/{endpoint_id}", 200, json={"timeout": None, "enabled": False})
    call("patch", endpoint, "/api/v1/endpoints/{endpoint_id}", 200, json={"enabled": True})
    call("get", "/api/v1/endpoints", "/api/v1/endpoints", 200)
    call("post", "/api/v1/endpoints", "/api/v1/endpoints", 400, json={"url": "ftp://x", "actions": ["checkout"]})
    call("post", "/api/v1/endpoints", "/api/v1/endpoints", 415, data="x", content_type="text/plain")
    call("post", "/api/v1/endpoints", "/api/v1/endpoints", 413, json={"name": "x" * app.config["MAX_CONTENT_LENGTH"]})

    accepted = call("post", "/api/v1/events", "/api/v1/events", 202,
                    json={"action": "checkout", "customer": "c1", "data": {"total": 5}})
    unknown = call("post", "/api/v1/events", "/api/v1/events", 400, json={"action": "nope", "customer": "c", "data": {}})
    assert unknown["allowed"]
    batch = [{"action": "checkout", "customer": f"c{i}", "data": {"i": i}} for i in range(3)]
    receipts = call("post", "/api/v1/events", "/api/v1/events", 202, json=batch)
    assert len(receipts) == 3 and all(len(r["message_ids"]) == 1 for r in receipts)
    bad_item = call("post", "/api/v1/events", "/api/v1/events", 400, json=[*batch, {**batch[0], "customer": ""}])
    assert (bad_item["index"], bad_item["field"]) == (3, "customer")
    [message_id] = accepted["message_ids"]
    message = f"/api/v1/messages/{message_id}"
    call("get", message, "/api/v1/messages/{message_id}", 200)
    busy = call("post", f"{message}/resend", "/api/v1/messages/{message_id}/resend", 409)
    assert busy["in_flight"] == message_id
    call("post", f"{message}/resend", "/api/v1/messages/{message_id}/resend", 202, json={"force": True})
    call("post", f"{message}/resend", "/api/v1/messages/{message_id}/resend", 200, json={"force": True})
    call("post", f"{message}/resend", "/api/v1/messages/{message_id}/resend", 400, json={"force": 1})
    call("get", "/api/v1/messages/999999", "/api/v1/messages/{message_id}", 404)
    call("get", "/api/v1/openapi.json", "/api/v1/openapi.json", 200)

    rotate = "/api/v1/endpoints/{endpoint_id}/rotate-secret"
    call("post", f"{endpoint}/rotate-secret", rotate, 400)  # a Basic endpoint has no secret to rotate
    call("patch", endpoint, "/api/v1/endpoints/{endpoint_id}", 200, json={
        "auth_type": "hmac", "signing_secret": "whsec_" + "A" * 40,
        "custom_headers": [{"name": "X-Tenant", "value": "t1"}, {"name": "X-Api-Key", "value": "k", "secret": True}]})
    call("post", f"{endpoint}/rotate-secret", rotate, 200, json={"window_hours": 1})

    call("delete", endpoint, "/api/v1/endpoints/{endpoint_id}", 204)
    call("get", endpoint, "/api/v1/endpoints/{endpoint_id}", 404)
    call("get", "/api/v1/endpoints", "/api/v1/endpoints", 401, headers={"Authorization": "Bearer whk_wrong"})

    documented_operations = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert {(method, path) for method, path, _ in call.seen} == documented_operations, "every operation was called"


# schemathesis against the live app


@pytest.fixture
def api_schema(app):
    """The live app on 127.0.0.1, a message to find and an endpoint to change; the schema from its URL."""
    make_endpoint("http://127.0.0.1:9/hook", actions=["*"])
    message_id = emit("checkout", "c1", {"n": 1}).messages[0].id
    done = db.session.get(Message, message_id)
    done.status, done.next_attempt_at = "done", None
    db.session.commit()
    # Imported here, not at the top: schemathesis takes seconds to import (pytest rewrites its asserts),
    # and the quick loop (-m "not slow") leaves this test out.
    import schemathesis

    app.config["SCHEMATHESIS_TOKEN"] = create_token("schemathesis")
    with LiveServer(app) as live:
        schema = schemathesis.openapi.from_url(f"{live.url}/api/v1/openapi.json")
        yield schema


@pytest.mark.slow  # schemathesis over the whole API
def test_the_live_api_keeps_to_its_document(api_schema, app):
    """Every operation, with schema-valid and schema-invalid input (schemathesis' Python API, one
    Hypothesis run per operation and mode). positive_data_acceptance is off: the API checks what no
    JSON Schema can say (the URL resolves to a public address, each authentication type's required
    fields, filename placeholders), so some schema-valid bodies are rightly refused. Every other check
    runs: no server error, documented status codes, content types, headers and bodies, schema-invalid
    input refused, 401 without the token, 405 with Allow for undocumented methods."""
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    headers = {"Authorization": f"Bearer {app.config['SCHEMATHESIS_TOKEN']}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    # schemathesis leaves out the operation that serves the document it was loaded from.
    assert {op.label for op in operations} >= {"POST /api/v1/events", "PATCH /api/v1/endpoints/{endpoint_id}",
                                               "POST /api/v1/messages/{message_id}/resend"}
    assert len(operations) == 9, " ; ".join(op.label for op in operations)
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def keeps_to_the_document(case):
                case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance], timeout=30)

            keeps_to_the_document()
