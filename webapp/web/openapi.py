"""The OpenAPI 3.1 document of /api/v1, generated from the code that serves it.

Paths, methods and path parameters come from the app's URL map; each API view says
what it takes and answers with ``@operation``; endpoint settings are described from
the settings form the API validates with (api_fields), events from emit()'s limits
and the catalogue. ``check_documented`` runs when the app is created: an API route
without ``@operation`` stops the app, so the document cannot leave a route out.
Responses are checked against the document by tests (schemathesis and a round trip).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask import Flask, current_app

from ..delivery.payload import CONTENT_TYPES
from ..domain.events import MAX_BATCH_EVENTS, MAX_CUSTOMER_LENGTH, MAX_DATA_DEPTH
from ..domain.signing_secrets import DEFAULT_WINDOW_HOURS, MAX_WINDOW_HOURS
from ..signing.auth_types import SECRET_FIELDS, TYPES
from ..storage.models import ALL_ACTIONS
from ..storage.statuses import STATUSES
from .api_fields import endpoint_fields, field_schema

API_PREFIX = "/api/v1"
BLUEPRINT = "api"
RULE_ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
IGNORED_METHODS = {"HEAD", "OPTIONS"}
ERROR_ANSWERS = {
    400: "Bad input: `field` names the field, `allowed` lists the accepted values when there is a fixed set",
    401: "Missing, unknown or revoked bearer token",
    404: "No such resource",
    409: "Conflict: `error` says why",
    413: "Request body over the limit",
    415: "The body is not sent as application/json",
}


class UndocumentedRoute(RuntimeError):
    """An API route whose view has no @operation."""


@dataclass(frozen=True)
class Operation:
    summary: str
    answers: dict[int, tuple[str, str | None]]  # status -> (description, schema name or None)
    body: str | None = None                    # request body schema name
    body_required: bool = True
    errors: tuple[int, ...] = ()               # answers beyond those every operation of its kind has
    public: bool = False                       # no bearer token needed
    description: str = ""
    tags: tuple[str, ...] = field(default=())


def operation(summary: str, **details):
    """Describe an API view for the OpenAPI document (put it under the route decorator)."""

    def mark(view):
        view.openapi = Operation(summary, **details)
        return view

    return mark


def check_documented(app: Flask) -> None:
    missing = [rule.rule for rule in app.url_map.iter_rules()
               if rule.endpoint.startswith(BLUEPRINT + ".") and not hasattr(app.view_functions[rule.endpoint], "openapi")]
    if missing:
        raise UndocumentedRoute(f"API routes without @operation (webapp/views/openapi.py): {', '.join(sorted(missing))}")


def document(app: Flask) -> dict:
    """The whole document, for this installation (its action catalogue)."""
    paths: dict[str, dict] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.endpoint.startswith(BLUEPRINT + "."):
            continue
        described: Operation = app.view_functions[rule.endpoint].openapi
        path = RULE_ARGUMENT.sub(lambda m: "{" + m.group(2) + "}", rule.rule)
        parameters = [path_parameter(app, converter or "default", name)
                      for converter, name in RULE_ARGUMENT.findall(rule.rule)]
        for method in sorted(rule.methods - IGNORED_METHODS):
            paths.setdefault(path, {})[method.lower()] = render(rule.endpoint, method, described, parameters)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Webhooks API",
            "version": "1",
            "description": "Record customer actions (events) and manage webhook endpoints. Every answer is JSON; "
                           "errors are {\"error\", \"field\"}. See README, \"JSON API\".",
        },
        "paths": paths,
        "components": {"schemas": schemas(), "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "A token from `flask --app webapp create-token NAME`"}}},
        "security": [{"bearer": []}],
    }


def render(endpoint: str, method: str, described: Operation, parameters: list[dict]) -> dict:
    answers = {str(status): answer(description, schema) for status, (description, schema) in described.answers.items()}
    errors = set(described.errors)
    if described.body:
        errors |= {400, 413, 415}
    if parameters:
        errors.add(404)
    if not described.public:
        errors.add(401)
    for status in sorted(errors):
        answers.setdefault(str(status), answer(ERROR_ANSWERS[status], "Error"))
    found = {"operationId": endpoint.split(".", 1)[1], "summary": described.summary, "responses": answers}
    if described.description:
        found["description"] = described.description
    if parameters:
        found["parameters"] = parameters
    if described.body:
        found["requestBody"] = {"required": described.body_required, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{described.body}"}}}}
    if described.public:
        found["security"] = []
    return found


def answer(description: str, schema: str | None) -> dict:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": {
        "$ref": f"#/components/schemas/{schema}"}}}}


def path_parameter(app: Flask, converter: str, name: str) -> dict:
    kind = app.url_map.converters[converter]
    maximum = getattr(kind, "maximum", None)
    schema = {"type": "integer", "minimum": 1, "maximum": maximum} if maximum else {"type": "string"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def schemas() -> dict:
    catalogue = list(current_app.config["WEBHOOKS_ACTIONS"])
    fields = endpoint_fields()
    choices = {"actions": [ALL_ACTIONS, *catalogue], "content_type": list(CONTENT_TYPES),
               "auth_type": list(TYPES)}
    settings = {name: field_schema(name, unbound, choices) for name, unbound in fields.items()}
    shown = {name: stored_form(schema) for name, schema in settings.items() if name not in SECRET_FIELDS}
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "string"},
            "field": {"type": "string", "description": "The field at fault"},
            "allowed": {"type": "array", "items": {"type": "string"}, "description": "The accepted values"},
            "in_flight": {"type": "integer", "description": "409 on resend: the message still being delivered"},
            "index": {"type": "integer", "minimum": 0,
                      "description": "A list of events: the item at fault, counted from 0"},
        }},
        "Event": {"type": "object", "additionalProperties": False, "required": ["action", "customer", "data"],
                  "properties": {
                      "action": {"type": "string", "enum": catalogue,
                                 "description": "One of the installation's catalogue (WEBHOOKS_ACTIONS)"},
                      "customer": {"type": "string", "minLength": 1, "maxLength": MAX_CUSTOMER_LENGTH,
                                   "description": "Not blank; no control characters"},
                      "data": {"type": "object",
                               "description": f"Any JSON object, nested at most {MAX_DATA_DEPTH} levels, up to "
                                            f"{current_app.config['WEBHOOKS_MAX_EVENT_BYTES']} bytes"},
                  }},
        "EventOrEvents": {"oneOf": [
            {"$ref": "#/components/schemas/Event"},
            {"type": "array", "items": {"$ref": "#/components/schemas/Event"}, "minItems": 1,
             "maxItems": MAX_BATCH_EVENTS, "description": "Recorded all or nothing, answered in this order"}]},
        "EventsAccepted": {"oneOf": [
            {"$ref": "#/components/schemas/EventAccepted"},
            {"type": "array", "items": {"$ref": "#/components/schemas/EventAccepted"}}]},
        "EventAccepted": {"type": "object", "additionalProperties": False, "required": ["event_id", "message_ids"],
                          "properties": {"event_id": {"type": "string"},
                                         "message_ids": {"type": "array", "items": {"type": "integer"}}}},
        "Message": {"type": "object", "additionalProperties": False, "required": MESSAGE_FIELDS, "properties": {
            "id": {"type": "integer"}, "event_id": {"type": "string"}, "endpoint_id": {"type": "integer"},
            "action": {"type": "string"}, "customer": {"type": "string"},
            "status": {"type": "string", "enum": list(STATUSES)}, "attempts": {"type": "integer", "minimum": 0},
            "response_code": {"type": ["integer", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
            "resend_of": {"type": ["integer", "null"]},
        }},
        "Resend": {"type": "object", "additionalProperties": False, "properties": {
            "force": {"type": "boolean", "default": False,
                      "description": "Resend even while the message's event is still being delivered"}}},
        "Resent": {"type": "object", "additionalProperties": False, "required": ["message_id", "resend_of", "queued"],
                   "properties": {"message_id": {"type": "integer"}, "resend_of": {"type": "integer"},
                                  "queued": {"type": "boolean",
                                             "description": "false: a resend of it was already in flight"}}},
        "Rotate": {"type": "object", "additionalProperties": False, "properties": {
            "window_hours": {"type": "integer", "minimum": 0, "maximum": MAX_WINDOW_HOURS,
                             "default": DEFAULT_WINDOW_HOURS,
                             "description": "How long the old secret keeps signing too; 0 ends it at once"},
            "secret": {"type": ["string", "null"], "writeOnly": True,
                       "description": "A whsec_ secret to use; null or left out: one is generated"}}},
        "Rotated": {"type": "object", "additionalProperties": False,
                    "required": ["secret", "fingerprints", "previous_secret_valid_until"], "properties": {
                        "secret": {"type": ["string", "null"],
                                   "description": "The generated secret, shown this once; null when it was given"},
                        "fingerprints": {"type": "array", "items": {"type": "string"},
                                         "description": "Of the secrets now signing, newest first"},
                        "previous_secret_valid_until": {"type": ["string", "null"], "format": "date-time"}}},
        "NewEndpoint": {"type": "object", "additionalProperties": False, "required": ["url", "actions"],
                        "properties": settings},
        "EndpointChanges": {"type": "object", "additionalProperties": False, "properties": settings},
        "Endpoint": {"type": "object", "additionalProperties": False,
                     "required": ["id", "secret_stored", "previous_secret_valid_until", "health", *shown], "properties": {
                         "id": {"type": "integer"}, **shown,
                         "secret_stored": {"type": "boolean",
                                           "description": "A password or secret key is stored (never shown)"},
                         "previous_secret_valid_until": {
                             "type": ["string", "null"], "format": "date-time",
                             "description": "After a Standard Webhooks rotation: until when the old secret "
                                            "still signs (both signatures are sent); null: no window"},
                         "health": {"$ref": "#/components/schemas/Health"}}},
        "Health": {"type": "object", "additionalProperties": False, "required": list(HEALTH_FIELDS),
                   "description": "Whether messages reach the endpoint (README: How delivery works)",
                   "properties": HEALTH_FIELDS},
        "Endpoints": {"type": "array", "items": {"$ref": "#/components/schemas/Endpoint"}},
        "OpenApiDocument": {"type": "object", "required": ["openapi", "paths"]},
    }


HEALTH_FIELDS = {
    "state": {"type": "string", "enum": ["healthy", "failing", "waiting", "disabled", "paused"]},
    "since": {"type": ["string", "null"], "format": "date-time",
              "description": "failing since, waiting until, or disabled at"},
    "last_error": {"type": ["string", "null"]},
    "last_error_at": {"type": ["string", "null"], "format": "date-time"},
    "success_rate_last_hour": {"type": ["number", "null"], "minimum": 0, "maximum": 1,
                               "description": "share of the last hour's attempts answered 2xx; null: none"},
    "disabled_reason": {"type": ["string", "null"]},
    "disabled_by": {"type": ["string", "null"], "description": "who disabled it; null: the product"},
}
MESSAGE_FIELDS = ["id", "event_id", "endpoint_id", "action", "customer", "status", "attempts", "response_code",
                  "created_at", "next_attempt_at", "resend_of"]


def stored_form(schema: dict) -> dict:
    """A setting as the API shows it back: blank text is "", never null; stored actions may have left the catalogue."""
    shown = {key: value for key, value in schema.items() if key not in ("writeOnly", "default", "minItems")}
    if isinstance(shown.get("type"), list):
        shown["type"] = [kind for kind in shown["type"] if kind != "null"][0]
    if shown["type"] == "array" and shown["items"].get("type") == "string":
        shown["items"] = {"type": "string"}
    if shown["type"] == "string":
        shown.pop("maxLength", None)  # an older version may have stored longer values
    return shown
