"""JSON API under /api/v1, authenticated by ``Authorization: Bearer <token>``.

Errors are JSON ``{"error": ..., "field": ...}`` with a 4xx status (and ``index``
when the field is in item N of a list of events); nothing is created when a
request is rejected. Every view carries its ``@operation``: the
OpenAPI document at /api/v1/openapi.json is generated from them (views/openapi.py).
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, g, jsonify, request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import HTTPException

from ..domain import endpoints as endpoint_service
from ..domain import events, signing_secrets
from ..domain.events import (
    MAX_BATCH_EVENTS,
    emit,
    emit_many,
    event_from_json,
    events_from_json,
)
from ..domain.logbook.resend import StillBeingDelivered, resend
from ..domain.tokens import find_token
from ..errors import InvalidInput
from ..extensions import db
from ..signing.auth_types import FIELD_DEFAULTS
from ..storage.endpoint_lookups import live_endpoints, live_or_404
from ..storage.models import Endpoint, Message
from ..text_rules import unencodable_problem
from .api_fields import ENDPOINT_FIELDS, as_form_items, endpoint_fields
from .forms import EndpointForm
from .openapi import document, operation

bp = Blueprint("api", __name__, url_prefix="/api/v1")

EVENT_FIELDS = set(events.EVENT_FIELDS)
RESEND_FIELDS = {"force"}
ROTATE_FIELDS = {"window_hours", "secret"}


def error(status: int, message: str, field: str | None = None):
    body = {"error": message}
    if field is not None:
        body["field"] = field
    return jsonify(body), status


@bp.errorhandler(InvalidInput)
def invalid_input(exc: InvalidInput):
    body = {"error": str(exc), "field": exc.field}
    if exc.allowed is not None:
        body["allowed"] = list(exc.allowed)
    if exc.index is not None:
        body["index"] = exc.index
    return jsonify(body), 400


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    response, status = error(exc.code or 500, exc.description or exc.name)
    for name, value in exc.get_headers():  # e.g. Allow on a 405
        if name.lower() != "content-type":
            response.headers[name] = value
    return response, status


@bp.app_errorhandler(HTTPException)
def outside_any_route(exc: HTTPException):
    """Unknown /api/v1 paths and wrong methods match no route of this blueprint: still JSON."""
    if request.path == bp.url_prefix or request.path.startswith(bp.url_prefix + "/"):
        return http_error(exc)
    return exc


PUBLIC_VIEWS = {"api.openapi_document"}


@bp.before_request
def require_token():
    if request.endpoint in PUBLIC_VIEWS:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return error(401, "missing bearer token: send 'Authorization: Bearer <token>'")
    g.api_token = find_token(token.strip())
    if g.api_token is None:
        return error(401, "invalid or revoked API token")


def json_body(limit: int | None = None):
    """The request's JSON, at most ``limit`` bytes (default MAX_CONTENT_LENGTH)."""
    limit = limit or current_app.config["MAX_CONTENT_LENGTH"]
    request.max_content_length = limit  # also bounds a chunked body, which has no Content-Length
    if request.content_length is not None and request.content_length > limit:
        too_large(limit)
    if not request.is_json:
        abort(415, "send the body as JSON with 'Content-Type: application/json'")
    if request.content_length is None and len(request.get_data()) >= limit:
        too_large(limit)  # a chunked body is read up to the limit and cut there, silently
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # the parser's own limit, about 1,000 levels
        raise InvalidInput("body", "is nested too deeply") from None
    if body is None:
        raise InvalidInput("body", "is not valid JSON")
    return body


def too_large(limit: int):
    abort(413, f"request body is over the limit of {limit} bytes")


def json_object(allowed: set[str]) -> dict:
    body = json_body()
    if not isinstance(body, dict):
        raise InvalidInput("body", f"must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(unknown[0][:100], f"unknown field; allowed fields: {', '.join(sorted(allowed))}")
    for field, value in body.items():
        refuse_unencodable(field, value)
    return body


def refuse_unencodable(field: str, value) -> None:
    """JSON can carry lone surrogates ("\\ud800") that no database or wire encoding accepts."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str) and (problem := unencodable_problem(item)):
            raise InvalidInput(field, problem)


@bp.get("/openapi.json")
@operation("This document: the API as OpenAPI 3.1", public=True, answers={200: ("The document", "OpenApiDocument")})
def openapi_document():
    return jsonify(document(current_app))


@bp.post("/events")
@operation("Record a customer action, or a list of them", body="EventOrEvents",
           description=f"One event object, or a list of 1 to {MAX_BATCH_EVENTS:,} of them (the list's body up to "
                       "WEBHOOKS_MAX_BATCH_BYTES) recorded all or nothing: the answer lists the events in the "
                       "order sent; a bad item is a 400 with its `index` (from 0) and `field`, and nothing is "
                       "recorded.",
           answers={202: (("Recorded, with one queued message per endpoint that selected the action; for a "
                           "list, one such answer per event, in order"), "EventsAccepted")})
def post_event():
    body = json_body(max(current_app.config["WEBHOOKS_MAX_BATCH_BYTES"], current_app.config["MAX_CONTENT_LENGTH"]))
    if isinstance(body, list):
        return jsonify([event.receipt() for event in emit_many(events_from_json(body))]), 202
    if len(request.get_data()) > current_app.config["MAX_CONTENT_LENGTH"]:  # read (and cached) by json_body
        too_large(current_app.config["MAX_CONTENT_LENGTH"])  # one event's limit: only a list may be larger
    if not isinstance(body, dict):
        raise InvalidInput("body", f"must be a JSON object (an event) or a list of them, got {type(body).__name__}")
    return jsonify(emit(*event_from_json(body)).receipt()), 202


@bp.get("/messages/<bigid:message_id>")
@operation("A message's delivery status", answers={200: ("The message", "Message")})
def get_message(message_id: int):
    message = db.session.get(Message, message_id)
    if message is None:
        abort(404, f"message {message_id} not found")
    return jsonify(
        {
            "id": message.id,
            "event_id": message.event_id,
            "endpoint_id": message.endpoint_id,
            "action": message.action,
            "customer": message.customer,
            "status": message.status,
            "attempts": message.attempts,
            "response_code": message.response_code,
            "created_at": message.created_at.isoformat() + "Z",
            "next_attempt_at": message.next_attempt_at.isoformat() + "Z" if message.next_attempt_at else None,
            "resend_of": message.resend_of_id,
        }
    )


@bp.post("/messages/<bigid:message_id>/resend")
@operation("Send a message's event again, as a new message", body="Resend", body_required=False, errors=(409,),
           description="409 while the message's event is still being delivered to that endpoint (queued, or "
                       "waiting for a retry, itself or as an earlier resend), unless {\"force\": true}. At most "
                       "one resend of a message is in flight: a second request answers 200 with that one.",
           answers={202: ("Queued", "Resent"), 200: ("A resend of it was already in flight", "Resent")})
def resend_message(message_id: int):
    """202 with the new message; 200 with the one already in flight; 409 while the message's event is
    still being delivered to its endpoint, unless the body says ``{"force": true}``."""
    message = db.session.get(Message, message_id)
    if message is None:
        abort(404, f"message {message_id} not found")
    body = json_object(RESEND_FIELDS) if request.get_data(cache=True) else {}  # the body is optional
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise InvalidInput("force", f"must be true or false, got {force!r}")
    try:
        outcome = resend(message, force=force)
    except StillBeingDelivered as busy:
        return jsonify({"error": f"{busy}; send {{\"force\": true}} to resend anyway", "field": "force",
                        "in_flight": busy.in_flight.id}), 409
    return jsonify({"message_id": outcome.message.id, "resend_of": message.id, "queued": outcome.queued}), (
        202 if outcome.queued else 200)


@bp.get("/endpoints")
@operation("Every endpoint (deleted ones are not listed)", answers={200: ("The endpoints", "Endpoints")})
def list_endpoints():
    return jsonify([endpoint_service.describe(e) for e in live_endpoints()])


@bp.post("/endpoints")
@operation("Create an endpoint", body="NewEndpoint",
           description="Validated like the settings form: the URL must be an absolute http(s) URL that is, and "
                       "resolves to, a globally reachable address; each authentication type needs its fields.",
           answers={201: ("Created", "Endpoint")})
def create_endpoint():
    body = json_object(ENDPOINT_FIELDS)
    endpoint = save(Endpoint(), body, defaults=defaults_for_new())
    return jsonify(endpoint_service.describe(endpoint)), 201


@bp.get("/endpoints/<id:endpoint_id>")
@operation("One endpoint", answers={200: ("The endpoint", "Endpoint")})
def get_endpoint(endpoint_id: int):
    return jsonify(endpoint_service.describe(live_or_404(endpoint_id)))


@bp.patch("/endpoints/<id:endpoint_id>")
@operation("Change an endpoint (fields left out keep their value)", body="EndpointChanges",
           answers={200: ("Changed", "Endpoint")})
def update_endpoint(endpoint_id: int):
    endpoint = live_or_404(endpoint_id)
    body = json_object(ENDPOINT_FIELDS)
    save(endpoint, body, defaults=endpoint_service.form_data(endpoint))
    return jsonify(endpoint_service.describe(endpoint))


@bp.post("/endpoints/<id:endpoint_id>/rotate-secret")
@operation("Rotate a Standard Webhooks signing secret", body="Rotate", body_required=False,
           description="The new secret (generated unless given) signs at once; the old one keeps signing too "
                       "for window_hours (default 24), both signatures space-separated, newest first.",
           answers={200: ("Rotated", "Rotated")})
def rotate_secret(endpoint_id: int):
    endpoint = live_or_404(endpoint_id)
    body = json_object(ROTATE_FIELDS) if request.get_data(cache=True) else {}
    given = body.get("secret")
    if given is not None and not isinstance(given, str):
        raise InvalidInput("secret", f"must be a string or null, got {type(given).__name__}")
    secret = signing_secrets.rotate(endpoint, given, body.get("window_hours", signing_secrets.DEFAULT_WINDOW_HOURS))
    db.session.commit()
    return jsonify({"secret": None if given else secret, "fingerprints": signing_secrets.fingerprints(endpoint),
                    "previous_secret_valid_until": endpoint_service.iso(signing_secrets.window_end(endpoint))})


@bp.delete("/endpoints/<id:endpoint_id>")
@operation("Delete an endpoint (the log keeps its messages; pending ones end failed)",
           answers={204: ("Deleted", None)})
def delete_endpoint(endpoint_id: int):
    endpoint_service.delete(live_or_404(endpoint_id))
    return "", 204




def defaults_for_new() -> dict:
    return {"enabled": True, "content_type": "json", "threads": 8, "auth_type": "none", **FIELD_DEFAULTS,
            "timeout": None}


def save(endpoint: Endpoint, body: dict, defaults: dict) -> Endpoint:
    """Validate the merged values with the settings form; 400 naming the first bad field."""
    values = {**defaults, **body}
    fields = endpoint_fields()
    formdata = ImmutableMultiDict(
        [pair for key, value in values.items() for pair in as_form_items(key, fields[key], value)]
    )
    has_secret = endpoint.id is not None and endpoint_service.secret_fits(endpoint, str(values.get("auth_type")))
    form = EndpointForm(formdata=formdata, meta={"csrf": False}, has_secret=has_secret,
                        stored_secret_headers=endpoint_service.secret_header_names(endpoint))
    if not form.validate():
        field, message = form.first_error()
        raise InvalidInput(field, message)
    endpoint_service.apply_form(endpoint, form.data, by=f"API token {g.api_token.name}")
    db.session.add(endpoint)
    db.session.commit()
    endpoint_service.after_enabled(endpoint)
    return endpoint
