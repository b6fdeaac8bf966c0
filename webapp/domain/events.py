"""emit() and emit_many(): the one way events enter, whether from Python, an RQ job or the API.

One transaction writes the events and a queued message per endpoint that
selected each action; only after the commit are the endpoints' delivery jobs
kicked (once per call, however many events). If Redis is down the kick is
skipped and the sweep delivers later: the database already holds everything.
A batch is all or nothing: the first bad event fails the call naming its index.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

from flask import current_app

from ..delivery import dispatch
from ..errors import InvalidInput
from ..extensions import db
from ..storage import bulk, pending
from ..storage.endpoint_lookups import deliverable
from ..storage.models import ALL_ACTIONS, EVENT_DATA_ENCODER, Endpoint, Event, Message, new_event_id, utcnow
from ..storage.statuses import NEW
from ..text_rules import control_character_problem, unencodable_problem

ACTION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
MAX_ACTION_LENGTH = 100
MAX_CUSTOMER_LENGTH = 255
MAX_DATA_DEPTH = 64
CONTAINERS = (dict, list, tuple)
EVENT_FIELDS = ("action", "customer", "data")
EVENT_COLUMNS = ("id", "action", "customer", "data")
MESSAGE_COLUMNS = ("event_id", "endpoint_id", "action", "customer")
MAX_BATCH_EVENTS = 1_000  # per API request or emit_many job; Python's emit_many() takes any number


@dataclass(frozen=True)
class EventInput:
    action: str
    customer: str
    data_json: str


def validate_event(action: Any, customer: Any, data: Any, max_bytes: int, catalogue: tuple[str, ...]) -> EventInput:
    """The one validation of an event, for emit(), the RQ job and the API alike."""
    if not isinstance(action, str):
        raise InvalidInput("action", f"must be a string, got {type(action).__name__}")
    if not action.strip():
        raise InvalidInput("action", "must not be empty")
    if problem := unencodable_problem(action):
        raise InvalidInput("action", problem)
    if len(action) > MAX_ACTION_LENGTH or not ACTION_PATTERN.fullmatch(action):
        raise InvalidInput(
            "action",
            f"must be 1-{MAX_ACTION_LENGTH} characters of letters, digits, '_', '.', ':' or '-'",
        )
    if action not in catalogue:
        # No endpoint could select it in the settings: accepting it would record events
        # that only "all actions" endpoints ever get (see README, "Sending events").
        raise InvalidInput("action", f"unknown action '{action}'; the catalogue (WEBHOOKS_ACTIONS) is: "
                                     f"{', '.join(catalogue)}", allowed=tuple(catalogue))
    if not isinstance(customer, str):
        raise InvalidInput("customer", f"must be a string, got {type(customer).__name__}")
    if not customer.strip():
        raise InvalidInput("customer", "must not be empty")
    if len(customer) > MAX_CUSTOMER_LENGTH:
        raise InvalidInput("customer", f"must be at most {MAX_CUSTOMER_LENGTH} characters")
    if problem := control_character_problem(customer):
        raise InvalidInput("customer", problem)
    if not isinstance(data, dict):
        raise InvalidInput("data", f"must be a JSON object, got {type(data).__name__}")
    check_data(data)
    try:
        data_json = EVENT_DATA_ENCODER.encode(data)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("data", f"is not JSON-serialisable ({exc})") from None
    try:
        size = len(data_json.encode())
    except UnicodeEncodeError:  # a lone surrogate in a key or a text, named by the rule's own message
        raise InvalidInput("data", unencodable_problem(data_json)) from None
    if size > max_bytes:
        raise InvalidInput("data", f"is {size} bytes, over the limit of {max_bytes} bytes")
    return EventInput(action, customer, data_json)


def check_data(data: dict) -> None:
    """Keys are strings and nesting is at most MAX_DATA_DEPTH levels (valid Unicode is checked
    on the encoded JSON, in one call). Only containers are visited: a flat object costs one step.

    Walked with a stack, not recursion: a payload nested thousands of levels deep must be
    refused, not overflow Python's stack (json.dumps recurses too, so it comes after this).
    """
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_DATA_DEPTH:
            raise InvalidInput("data", f"is nested more than {MAX_DATA_DEPTH} levels deep")
        if isinstance(value, dict):
            if not all(isinstance(key, str) for key in value):
                raise InvalidInput("data", "object keys must be strings")
            value = value.values()
        pending.extend((inner, depth + 1) for inner in value if isinstance(inner, CONTAINERS))


@dataclass(frozen=True)
class EmittedMessage:
    id: int
    endpoint_id: int


@dataclass(frozen=True)
class EmittedEvent:
    """What emit() and emit_many() return per event, without reading anything back:
    its id (the ``Webhook-Id``), what was recorded, and its messages' ids."""

    id: str
    action: str
    customer: str
    created_at: dt.datetime
    data_json: str
    messages: list[EmittedMessage]

    @property
    def data(self) -> dict:
        """A copy of the data as recorded (parsed on demand: a batch's answer does not need it)."""
        return json.loads(self.data_json)

    def receipt(self) -> dict:
        """What the API and the RQ jobs answer for it."""
        return {"event_id": self.id, "message_ids": [m.id for m in self.messages]}


def event_from_json(item: Any) -> tuple[Any, Any, Any]:
    """(action, customer, data) of one event as JSON carries it: an object with exactly EVENT_FIELDS.
    Their values are validated by emit() and emit_many()."""
    if not isinstance(item, dict):
        raise InvalidInput("event", f"must be a JSON object with {', '.join(EVENT_FIELDS)}, got {type(item).__name__}")
    unknown = sorted(str(key) for key in item if key not in EVENT_FIELDS)
    if unknown:
        raise InvalidInput(unknown[0][:100], f"unknown field; allowed fields: {', '.join(EVENT_FIELDS)}")
    for field in EVENT_FIELDS:
        if field not in item:
            raise InvalidInput(field, "is required")
    return item["action"], item["customer"], item["data"]


def events_from_json(items: Any) -> list[tuple[Any, Any, Any]]:
    """A batch as the API and the emit_many job take it: a list of 1 to MAX_BATCH_EVENTS event objects.
    A bad item raises InvalidInput with its index."""
    if not isinstance(items, list):
        raise InvalidInput("events", f"must be a list of event objects, got {type(items).__name__}")
    if not 1 <= len(items) <= MAX_BATCH_EVENTS:
        raise InvalidInput("events", f"holds {len(items)} events; send 1 to {MAX_BATCH_EVENTS} at a time")
    found = []
    for index, item in enumerate(items):
        try:
            found.append(event_from_json(item))
        except InvalidInput as exc:
            raise exc.at(index) from None
    return found


def emit(action: str, customer: str, data: dict) -> EmittedEvent:
    """Record one customer action; its messages (one per endpoint that takes it) are in ``.messages``."""
    max_bytes, catalogue = current_app.config["WEBHOOKS_MAX_EVENT_BYTES"], current_app.config["WEBHOOKS_ACTIONS"]
    [emitted] = record([validate_event(action, customer, data, max_bytes, catalogue)])
    return emitted


def emit_many(items: Iterable[tuple[str, str, dict]]) -> list[EmittedEvent]:
    """Record many (action, customer, data) in one transaction, with bulk INSERTs: all or nothing.
    The returned events are in the order given. A bad item raises InvalidInput naming its index
    and field, and nothing is written."""
    max_bytes, catalogue = current_app.config["WEBHOOKS_MAX_EVENT_BYTES"], current_app.config["WEBHOOKS_ACTIONS"]
    inputs = []
    for index, (action, customer, data) in enumerate(items):
        try:
            inputs.append(validate_event(action, customer, data, max_bytes, catalogue))
        except InvalidInput as exc:
            raise exc.at(index) from None
    return record(inputs)


def record(inputs: list[EventInput]) -> list[EmittedEvent]:
    """Write validated events and their messages in one transaction, then kick delivery once."""
    routes = [(endpoint_id, ALL_ACTIONS in (wanted := set(json.loads(actions or "[]"))), wanted)
              for endpoint_id, actions in active_routes()]
    now = utcnow()
    event_rows, message_rows = [], []
    for item in inputs:
        event_id = new_event_id()
        event_rows.append((event_id, item.action, item.customer, item.data_json))
        message_rows += [(event_id, endpoint_id, item.action, item.customer)
                         for endpoint_id, wants_all, wanted in routes if wants_all or item.action in wanted]
    # Tuples on the session's connection (one transaction), no per-row ORM or Core work (storage/bulk.py).
    connection = db.session.connection()
    bulk.insert_rows(connection, Event.__table__, EVENT_COLUMNS, event_rows, {"created_at": now, "is_test": False})
    # Matched back by (event, endpoint), unique per message: RETURNING promises no order.
    created = bulk.insert_rows(connection, Message.__table__, MESSAGE_COLUMNS, message_rows, {
        "status": NEW, "attempts": 0, "created_at": now, "next_attempt_at": now, "is_test": False,
    }, returning=("id", "event_id", "endpoint_id"))
    pending.enqueue(connection, [(message_id, endpoint_id) for message_id, _, endpoint_id in created], now)
    ids = {(event_id, endpoint_id): message_id for message_id, event_id, endpoint_id in created}
    by_event: dict[str, list[EmittedMessage]] = {row[0]: [] for row in event_rows}
    for event_id, endpoint_id, _, _ in message_rows:
        by_event[event_id].append(EmittedMessage(ids[event_id, endpoint_id], endpoint_id))
    db.session.commit()
    dispatch.kick({row[1] for row in message_rows})
    return [EmittedEvent(event_id, action, customer, now, data_json, by_event[event_id])
            for event_id, action, customer, data_json in event_rows]


def active_routes() -> list[tuple[int, str]]:
    """(id, actions JSON) of the endpoints that take new messages: a light read, even for thousands.
    In id order, so an event's messages are listed (and numbered) in the order of their endpoints."""
    return db.session.execute(
        db.select(Endpoint.id, Endpoint.actions_json).where(deliverable()).order_by(Endpoint.id)
    ).all()

