"""Claims: lease due messages (and the single-flight lease of an ordered endpoint), give back, renew.

A claim is a lease: it chooses up to N due rows of ``pending_message``, oldest
first (``FOR UPDATE SKIP LOCKED``: rows another worker is choosing are passed
over), and marks them held by one worker process (``lease_owner``) until
``lease_until``; the log's ``message`` rows are not touched until the outcome.
Outcomes are written only while the lease is still ours, and count the attempt then
(``records``): a claimed message that was never tried (its endpoint started
failing first) is released uncounted. If the process dies, the sweep turns its
expired leases into interrupted attempts and makes the messages due again.

Every function takes the SQLAlchemy Core connection of the caller's
transaction: the ledger runs many of them in one commit.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import ARRAY, Connection, Integer, bindparam, exists, func, literal_column, or_, select, true, \
    union_all, update

from ..signing.request import MessageContent
from ..storage.endpoint_lookups import live
from ..storage.id_lists import DIALECTS, matches_one_of
from ..storage.models import (
    Endpoint,
    Event,
    Message,
    PendingMessage,
)
from ..storage.statuses import QUEUED, RESENT
from . import health as rules
from .health import Health

# The most messages one claim takes, in order or one lane's share of a parallel batch. Each claim
# costs the ledger a transaction's fixed work, spread over its messages: 200 rather than 50 in order
# (a fast receiver: 4,900 -> 5,850/s on SQLite), and rather than 64 per parallel lane (2 workers:
# 5,600 -> 6,800/s on SQLite, where each write transaction takes the lock the other worker waits for;
# PostgreSQL gained a fifteenth). lane.BATCH_SECONDS keeps a slow receiver's claims small.
MOST_PER_CLAIM = 200

MESSAGE = Message.__table__
PENDING = PendingMessage.__table__
EVENT = Event.__table__
ENDPOINT = Endpoint.__table__


def _per_database(build, column, name: str) -> dict:
    """One statement per database, ``build(by_ids)``: ``column`` one of the list of ids bound as ``name``
    (one parameter, so the statement's text is the same for any number of ids: storage/id_lists.py)."""
    return {dialect: build(matches_one_of(dialect, column, name=name)) for dialect in DIALECTS}


# --------------------------------------------------------------------------- the endpoint


HEALTH_COLUMNS = (ENDPOINT.c.enabled, ENDPOINT.c.health, ENDPOINT.c.consecutive_failures, ENDPOINT.c.failing_since,
                  ENDPOINT.c.last_error, ENDPOINT.c.last_error_at, ENDPOINT.c.retry_after_until, ENDPOINT.c.paused_at)


def read_endpoint(conn: Connection, endpoint_id: int):
    """The endpoint's row (settings and health), or None when it is gone."""
    return read_endpoints(conn, [endpoint_id]).get(endpoint_id)


READ_ENDPOINTS = _per_database(lambda by_ids: select(ENDPOINT).where(by_ids, live()), ENDPOINT.c.id, "b_ids")


def read_endpoints(conn: Connection, endpoint_ids) -> dict:
    """Rows of the endpoints that still exist, by id."""
    return {row.id: row for row in conn.execute(READ_ENDPOINTS[conn.dialect.name], {"b_ids": list(endpoint_ids)})}


def health_of(row) -> Health:
    return Health(*(getattr(row, column.name) for column in HEALTH_COLUMNS))


# --------------------------------------------------------------------------- claiming
#
# The statements below are built once, with bind parameters: building and
# hashing a statement costs more than SQLite takes to run it.


def _due_for(endpoint, *conditions):
    """The endpoint's messages due now and not leased (``endpoint``: a bound parameter or a column)."""
    return (PENDING.c.endpoint_id == endpoint, PENDING.c.next_attempt_at <= bindparam("b_now"),
            PENDING.c.lease_owner.is_(None), *conditions)


def _due(*conditions):
    return _due_for(bindparam("b_endpoint"), *conditions)


def _choose_statement(*conditions):
    return (select(PENDING.c.message_id).where(*_due(*conditions))
            .order_by(PENDING.c.message_id).limit(bindparam("b_limit")).with_for_update(skip_locked=True))


# Choosing and leasing are two statements: as one (UPDATE ... WHERE id IN (the choice)), PostgreSQL's
# planner, expecting a row or two, joined the choice against a walk of the whole table.
CHOOSE = {
    rules.ALL_DUE: _choose_statement(),
    RESENT: _choose_statement(PENDING.c.is_retry.is_(True)),
    QUEUED: _choose_statement(PENDING.c.is_retry.is_(False)),
}


LEASE = _per_database(lambda by_ids: (update(PENDING).where(by_ids, PENDING.c.lease_owner.is_(None))
                                      .values(lease_owner=bindparam("b_owner"), lease_until=bindparam("b_until"))
                                      .returning(PENDING.c.message_id)),
                      PENDING.c.message_id, "b_ids")
CONTENT = _per_database(lambda by_ids: (select(MESSAGE.c.id, MESSAGE.c.attempts, EVENT.c.id, EVENT.c.action,
                                               EVENT.c.customer, EVENT.c.created_at, EVENT.c.data, MESSAGE.c.created_at)
                                        .join(EVENT, EVENT.c.id == MESSAGE.c.event_id).where(by_ids)),
                        MESSAGE.c.id, "ids")


# Several endpoints' choices in one statement, each walking its endpoint's index and stopping after
# its own LIMIT. PostgreSQL: a LATERAL subquery per row of the plans' arrays. SQLite has no LATERAL and
# takes no LIMIT from an outer row: a UNION ALL of one branch per plan, a cycle's plans up to 64 at a
# time, in the narrowest of CHOOSE_WIDTHS that holds them, padded with branches that match nothing
# (a few statement texts: id_lists.py). Why up to 64: with 8 per statement a fan-out's cycle of 200
# claims ran 25 statements, and sqlite3 lets go of the interpreter around each, so with 250 lanes
# sending the ledger waited to get it back each time, holding SQLite's write turn meanwhile (one
# event to 1,000 endpoints, two sets of eight alternating pairs: x1.11 and x1.22 in the median pair,
# 15 pairs of 16 faster). Why narrower ones too: padding a lone claim to 64 branches slowed a drain
# to one endpoint by 3-6 % (two pairs).
_PLANS = (func.unnest(bindparam("b_endpoints", type_=ARRAY(Integer)), bindparam("b_limits", type_=ARRAY(Integer)))
          .table_valued("endpoint_id", "most", with_ordinality="place").render_derived(name="plans"))
_CHOSEN = (select(PENDING.c.message_id).where(*_due_for(_PLANS.c.endpoint_id)).order_by(PENDING.c.message_id)
           .limit(_PLANS.c.most).with_for_update(skip_locked=True).lateral("chosen"))
CHOOSE_MANY_POSTGRESQL = select(_PLANS.c.place, _CHOSEN.c.message_id).select_from(_PLANS.join(_CHOSEN, true()))
CHOOSE_WIDTHS = (1, 8, 64)  # the widest: 256 placeholders on SQLite (endpoint, now, limit, offset per branch)


def _choose_branch(place: int):
    chosen = (select(PENDING.c.message_id).where(*_due_for(bindparam(f"b_endpoint_{place}", type_=Integer)))
              .order_by(PENDING.c.message_id).limit(bindparam(f"b_limit_{place}")).subquery())
    return select(literal_column(str(place)).label("place"), chosen.c.message_id)


CHOOSE_MANY_SQLITE = {width: union_all(*(_choose_branch(place) for place in range(width))) if width > 1
                      else _choose_branch(0) for width in CHOOSE_WIDTHS}


def _choose_width(plans: int) -> int:
    """The narrowest SQLite statement for a group of ``plans`` claims (at most the widest)."""
    return next(width for width in CHOOSE_WIDTHS if width >= plans)


@dataclass(frozen=True)
class ClaimPlan:
    """One claim of a cycle: what the endpoint's health lets it take, how many, until when."""

    endpoint_id: int
    take: str
    limit: int
    until: dt.datetime


def claim_many(conn: Connection, owner: str, plans: list[ClaimPlan], now: dt.datetime) -> list[list[MessageContent]]:
    """Lease what each plan allows, oldest first; the messages of each plan, in plan order."""
    chosen: list[list[int]] = [[] for _ in plans]
    # Each endpoint's first plan, when it may take everything due, is chosen with the others' in one
    # statement (CHOOSE_MANY) and leased at once. A second plan of an endpoint (two lanes claiming in
    # the same cycle) comes after, one by one: its own row locks do not hold it back, so it must see
    # what the first leased. So do the probes and retries-only claims of an unhealthy endpoint.
    together, alone, seen = [], [], set()
    for index, plan in enumerate(plans):
        if plan.take == rules.ALL_DUE and plan.limit > 0 and plan.endpoint_id not in seen:
            together.append(index)
        elif plan.take != rules.NOTHING and plan.limit > 0:
            alone.append(index)
        seen.add(plan.endpoint_id)
    for index, ids in zip(together, _choose_many(conn, [plans[i] for i in together], now)):
        chosen[index] = ids
    leased = _lease_many(conn, owner, [(plans[i].until, chosen[i]) for i in together])
    for index in together:
        chosen[index] = [i for i in chosen[index] if i in leased]
    for index in alone:
        chosen[index] = sorted(_lease_many(conn, owner, [(plans[index].until, _choose(conn, plans[index], now))]))
    every_id = [message_id for ids in chosen for message_id in ids]
    if not every_id:
        return [[] for _ in plans]
    contents = {}
    for first in range(0, len(every_id), 500):
        for message_id, attempts, *rest in conn.execute(CONTENT[conn.dialect.name],
                                                        {"ids": every_id[first:first + 500]}):
            contents[message_id] = MessageContent(message_id, attempts + 1, *rest)
    return [[contents[i] for i in sorted(ids) if i in contents] for ids in chosen]


def _choose_many(conn: Connection, plans: list[ClaimPlan], now: dt.datetime) -> list[list[int]]:
    """The oldest due messages of several endpoints (each once), locked: one statement, not one per
    endpoint (a fan-out claims for a thousand endpoints, one message each)."""
    chosen: list[list[int]] = [[] for _ in plans]
    if not plans:
        return chosen
    if conn.dialect.name == "postgresql":
        rows = conn.execute(CHOOSE_MANY_POSTGRESQL, {"b_endpoints": [plan.endpoint_id for plan in plans],
                                                     "b_limits": [plan.limit for plan in plans], "b_now": now})
        for place, message_id in rows:
            chosen[place - 1].append(message_id)
        return chosen
    widest = CHOOSE_WIDTHS[-1]
    for first in range(0, len(plans), widest):
        group = plans[first:first + widest]
        width = _choose_width(len(group))
        values = {"b_now": now}
        for place in range(width):
            plan = group[place] if place < len(group) else None
            values[f"b_endpoint_{place}"] = plan.endpoint_id if plan else None  # matches nothing
            values[f"b_limit_{place}"] = plan.limit if plan else 0
        for place, message_id in conn.execute(CHOOSE_MANY_SQLITE[width], values):
            chosen[first + place].append(message_id)
    return chosen


def _lease_many(conn: Connection, owner: str, choices: list[tuple[dt.datetime, list[int]]]) -> set[int]:
    """Lease the chosen ids, one statement per lease end (one per endpoint timeout); the ids leased."""
    by_until: dict[dt.datetime, list[int]] = defaultdict(list)
    for until, ids in choices:
        by_until[until].extend(ids)
    leased: set[int] = set()
    for until, ids in by_until.items():
        if ids:
            values = {"b_ids": ids, "b_owner": owner, "b_until": until}
            leased.update(conn.execute(LEASE[conn.dialect.name], values).scalars())
    return leased


def _choose(conn: Connection, plan: ClaimPlan, now: dt.datetime) -> list[int]:
    """The oldest due messages the plan may take, locked (not yet leased)."""
    if plan.take == rules.NOTHING or plan.limit <= 0:
        return []
    values = {"b_endpoint": plan.endpoint_id, "b_now": now, "b_limit": plan.limit}
    if plan.take == rules.ALL_DUE:
        return conn.execute(CHOOSE[rules.ALL_DUE], values).scalars().all()
    ids = conn.execute(CHOOSE[RESENT], values).scalars().all()
    if not ids and plan.take == rules.PROBE and not _retry_pending(conn, plan.endpoint_id):
        ids = conn.execute(CHOOSE[QUEUED], {**values, "b_limit": 1}).scalars().all()
    return ids


def _retry_pending(conn: Connection, endpoint_id: int) -> bool:
    return conn.execute(select(exists().where(PENDING.c.endpoint_id == endpoint_id, PENDING.c.is_retry.is_(True)))
                        ).scalar()


def has_waiting(conn: Connection, endpoint_id: int) -> bool:
    """Whether any message of the endpoint is still to be sent."""
    return conn.execute(select(exists().where(PENDING.c.endpoint_id == endpoint_id))).scalar()


def claimable(conn: Connection, endpoint_id: int, interval: float, now: dt.datetime) -> bool:
    """Whether a claim for the endpoint would take something right now."""
    row = read_endpoint(conn, endpoint_id)
    if row is None:
        return False
    take = rules.gate(health_of(row), now, interval).take
    if take == rules.NOTHING:
        return False
    retries_only = () if take in (rules.ALL_DUE, rules.PROBE) else (PENDING.c.is_retry.is_(True),)
    return conn.execute(select(exists().where(*_due(*retries_only))),
                        {"b_endpoint": endpoint_id, "b_now": now}).scalar()


def has_untried(conn: Connection, endpoint_id: int) -> bool:
    """Whether messages wait for their first attempt (so a closed gate needs a wake-up later)."""
    return conn.execute(select(exists().where(PENDING.c.endpoint_id == endpoint_id, PENDING.c.is_retry.is_(False)))
                        ).scalar()


GIVE_BACK = _per_database(lambda by_ids: (update(PENDING)
                                          .where(by_ids, PENDING.c.lease_owner == bindparam("b_owner"))
                                          .values(lease_owner=None, lease_until=None)),
                          PENDING.c.message_id, "b_ids")
RELEASE_ORDER = _per_database(lambda by_ids: (update(ENDPOINT)
                                              .where(by_ids, ENDPOINT.c.lease_owner == bindparam("b_owner"))
                                              .values(lease_owner=None, lease_until=None)),
                              ENDPOINT.c.id, "b_ids")


def release(conn: Connection, owner: str, message_ids: list[int]) -> None:
    """Give back claimed messages that were not tried: no attempt is counted."""
    if message_ids:
        conn.execute(GIVE_BACK[conn.dialect.name], {"b_ids": message_ids, "b_owner": owner})


def renew(conn: Connection, owner: str, until: dt.datetime) -> None:
    conn.execute(update(PENDING).where(PENDING.c.lease_owner == owner).values(lease_until=until))
    conn.execute(update(ENDPOINT).where(ENDPOINT.c.lease_owner == owner).values(lease_until=until))


def acquire_endpoints(conn: Connection, endpoint_ids: list[int], owner: str, until: dt.datetime,
                      now: dt.datetime) -> set[int]:
    """Take the single-flight lease of queue-batches-off endpoints (one message at a time, in order);
    returns those we hold. A row another transaction is writing right now is skipped, not waited
    for: its holder is busy with that endpoint anyway."""
    if not endpoint_ids:
        return set()
    values = {"b_ids": endpoint_ids, "b_owner": owner, "b_until": until, "b_now": now}
    return set(conn.execute(ACQUIRE_ORDER[conn.dialect.name], values).scalars())


def _acquire_order(by_ids):
    free = (select(ENDPOINT.c.id)
            .where(by_ids, or_(ENDPOINT.c.lease_owner.is_(None), ENDPOINT.c.lease_until < bindparam("b_now"),
                               ENDPOINT.c.lease_owner == bindparam("b_owner")))
            .with_for_update(skip_locked=True).cte("free"))
    return (update(ENDPOINT).where(ENDPOINT.c.id.in_(select(free.c.id)))
            .values(lease_owner=bindparam("b_owner"), lease_until=bindparam("b_until"))
            .returning(ENDPOINT.c.id))


ACQUIRE_ORDER = _per_database(_acquire_order, ENDPOINT.c.id, "b_ids")


def release_endpoints(conn: Connection, endpoint_ids: list[int], owner: str) -> None:
    if endpoint_ids:
        conn.execute(RELEASE_ORDER[conn.dialect.name], {"b_ids": endpoint_ids, "b_owner": owner})


def compile_ahead(conn: Connection, now: dt.datetime) -> None:
    """Run each statement of a claim cycle once, matching nothing, so a new worker compiles them
    before its first claim rather than during it. SQLAlchemy compiles a statement the first time a
    process runs it: a fresh worker's first claim cycle took 30-45 ms of CPU, most of it compiling,
    while every lane of a fan-out waited for it (a later cycle of 32 claims: about 15 ms)."""
    dialect, no_ids = conn.dialect.name, {"b_ids": [], "b_owner": ""}
    read_endpoints(conn, [])
    # Endpoint ids start at 1. SQLite has a statement per width; PostgreSQL one for any number of plans.
    for width in CHOOSE_WIDTHS if dialect == "sqlite" else CHOOSE_WIDTHS[:1]:
        _choose_many(conn, [ClaimPlan(0, rules.ALL_DUE, 1, now)] * width, now)
    # The parameters' names are part of what SQLAlchemy caches an UPDATE under: the ones the claims use.
    conn.execute(LEASE[dialect], {**no_ids, "b_until": now})
    conn.execute(ACQUIRE_ORDER[dialect], {**no_ids, "b_until": now, "b_now": now})
    conn.execute(RELEASE_ORDER[dialect], no_ids)
    conn.execute(GIVE_BACK[dialect], no_ids)
    conn.execute(CONTENT[dialect], {"ids": []})
