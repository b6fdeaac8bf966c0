"""Fill a database with many log entries quickly, for the benchmarks."""
from __future__ import annotations

import datetime as dt
import random
import uuid

from sqlalchemy import insert, text

from webapp.extensions import db
from webapp.storage.models import Endpoint, Event, Message, response_class

ACTIONS = ("checkout", "opt_in", "points_added", "reward_claimed", "tier_change")
STATUSES = ("done",) * 8 + ("failed", "resent")
CODES = (200,) * 8 + (404, 500, 503, None)


def reset_schema() -> None:
    """Empty tables (the schema comes from the migrations)."""
    for table in ("attempt", "message", "event", "endpoint"):
        db.session.execute(text(f"DELETE FROM {table}"))
    db.session.commit()


def seed_log(rows: int, endpoints: int = 3, chunk: int = 20_000, seed: int = 1) -> list[int]:
    rng = random.Random(seed)
    endpoint_ids = []
    for n in range(endpoints):
        endpoint = Endpoint(url=f"http://127.0.0.1:9/{n}", name=f"endpoint {n}")
        endpoint.actions = ["*"]
        db.session.add(endpoint)
        db.session.flush()
        endpoint_ids.append(endpoint.id)
    db.session.commit()
    start = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=80)
    step = dt.timedelta(days=80) / rows
    for first in range(0, rows, chunk):
        events, messages = [], []
        for i in range(first, min(first + chunk, rows)):
            created = start + step * i
            event_id = uuid.uuid4().hex
            action, code = rng.choice(ACTIONS), rng.choice(CODES)
            customer = f"customer-{rng.randrange(50_000)}"
            events.append({"id": event_id, "action": action, "customer": customer,
                           "data_json": '{"points": 10}', "created_at": created, "is_test": False})
            messages.append({"event_id": event_id, "endpoint_id": endpoint_ids[i % endpoints],
                             "action": action, "customer": customer, "status": rng.choice(STATUSES),
                             "attempts": 1, "response_code": code, "response_class": response_class(code),
                             "created_at": created, "last_attempt_at": created, "is_test": False})
        db.session.execute(insert(Event), events)
        db.session.execute(insert(Message), messages)
        db.session.commit()
    return endpoint_ids
