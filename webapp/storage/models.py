"""The schema: endpoints, events, messages and their delivery queue, attempts, operators, sessions and API tokens.

Timestamps are naive UTC datetimes (the same on SQLite and PostgreSQL).
Message ids grow with creation time, so "newest first" is ``ORDER BY id DESC``
and the log pages by id (keyset), never by OFFSET.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .statuses import FINAL_STATUSES, NEW

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT.
BigId = BigInteger().with_variant(Integer, "sqlite")

HEALTHY, FAILING = "healthy", "failing"


# An endpoint whose actions hold this takes every action, present and future.
ALL_ACTIONS = "*"


def response_class(code: int | None) -> int | None:
    return None if code is None else code // 100


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def new_event_id() -> str:
    return uuid.uuid4().hex


class Endpoint(db.Model):
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="Webhook endpoint")
    url: Mapped[str] = mapped_column(String(2048))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    use_proxy: Mapped[bool] = mapped_column(Boolean, default=False)
    timeout: Mapped[int] = mapped_column(Integer, default=1)
    content_type: Mapped[str] = mapped_column(String(10), default="json")
    actions_json: Mapped[str] = mapped_column("actions", Text, default="[]")
    queue_batches: Mapped[bool] = mapped_column(Boolean, default=False)
    threads: Mapped[int] = mapped_column(Integer, default=8)
    auth_type: Mapped[str] = mapped_column(String(10), default="none")
    auth_username: Mapped[str | None] = mapped_column(String(255))
    auth_region: Mapped[str | None] = mapped_column(String(64))
    auth_service: Mapped[str | None] = mapped_column(String(64))
    auth_access_key_id: Mapped[str | None] = mapped_column(String(255))
    auth_algo_prefix: Mapped[str | None] = mapped_column(String(32))
    auth_vendor_key: Mapped[str | None] = mapped_column(String(32))
    auth_filename_format: Mapped[str | None] = mapped_column(String(512))
    # Basic password, AWS secret key or Standard Webhooks secret, Fernet-encrypted (see webapp.storage.crypto).
    auth_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    # After a Standard Webhooks rotation: the old secret, still signed with until the window ends.
    auth_previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    auth_previous_secret_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # [{"name", "value", "secret"}] sent on every attempt; a secret value is Fernet-encrypted.
    custom_headers_json: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    # Held by the one job that delivers a queue-batches-off endpoint in order.
    lease_owner: Mapped[str | None] = mapped_column(String(36))
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Health, kept by the delivery path (rules in webapp/delivery/health.py).
    health: Mapped[str] = mapped_column(String(10), default=HEALTHY, server_default=HEALTHY)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failing_since: Mapped[dt.datetime | None] = mapped_column(DateTime)  # first failure of the current streak
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    retry_after_until: Mapped[dt.datetime | None] = mapped_column(DateTime)  # the receiver asked us to wait
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    disabled_by: Mapped[str | None] = mapped_column(String(255))  # an operator's e-mail; None: the product
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # The last time it was down (failing or disabled), kept after it is enabled again
    # so operators can resend what failed meanwhile.
    outage_from: Mapped[dt.datetime | None] = mapped_column(DateTime)
    outage_to: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # The state operators were last e-mailed about (webapp/notices.py).
    notified_state: Mapped[str | None] = mapped_column(String(20))
    # Paused by an operator (the queue view): new messages are accepted, nothing is sent until resumed.
    paused_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    paused_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    @property
    def actions(self) -> list[str]:
        return json.loads(self.actions_json or "[]")

    @actions.setter
    def actions(self, value: list[str]) -> None:
        self.actions_json = json.dumps(sorted(set(value)))

    @property
    def has_secret(self) -> bool:
        return bool(self.auth_secret_encrypted)

    @property
    def custom_headers(self) -> list[dict]:
        return json.loads(self.custom_headers_json or "[]")

    @custom_headers.setter
    def custom_headers(self, value: list[dict]) -> None:
        self.custom_headers_json = json.dumps(value)


# How an event's data is stored as JSON text: compact and in one encoding, so delivery puts the stored
# text into a message's body as it is (delivery.payload). Made once: json.dumps() with options builds
# an encoder per call, a third of its cost.
EVENT_DATA_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class Event(db.Model):
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_event_id)
    action: Mapped[str] = mapped_column(String(100))
    customer: Mapped[str] = mapped_column(String(255))
    data_json: Mapped[str] = mapped_column("data", Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)

    messages: Mapped[list["Message"]] = relationship(back_populates="event", order_by="Message.id")

    @property
    def data(self) -> dict:
        return json.loads(self.data_json)


# References the database enforces on SQLite only. PostgreSQL checks a foreign key with a query per
# inserted row (a trigger), and each check also locks the referenced row, on the server every delivery
# competes with. A message's event and endpoint: at an emit of 1,000 events those two checks were about
# 40 % of the message INSERT (52 -> 30 ms without them). An attempt's and a pending row's message: with
# both checks dropped, a drain of 20,000 messages ran x1.05-1.12 faster with queue batches on and
# x1.00-1.17 in order (bench/NOTES.md). What writes these rows keeps the references true: an emit
# (domain.events.record) writes the event, its messages and their pending rows in one transaction, the
# Test button (delivery.try_endpoint) the event, its message and the attempt; a resend copies the event
# of a message that exists; a worker writes an attempt for a message it holds a lease on; endpoints are
# never deleted (only marked deleted_at); retention (domain.logbook.retention) deletes a message's
# attempts and pending row with it, leaves a message a worker holds, and deletes an event only once no
# message points at it. SQLite checks them in this process at no cost we could measure, so it keeps
# them; the ORM's joins read them from here on both. Migrations 0008 (event, endpoint) and 0009
# (attempt, pending row) drop them on PostgreSQL.
def sqlite_only_reference(column: str, target: str, **options) -> ForeignKeyConstraint:
    return ForeignKeyConstraint([column], [target], **options).ddl_if(dialect="sqlite")


MESSAGE_REFERENCES = (
    sqlite_only_reference("event_id", "event.id", ondelete="CASCADE"),
    sqlite_only_reference("endpoint_id", "endpoint.id"),
)


class Message(db.Model):
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(32))       # references event.id (see MESSAGE_REFERENCES)
    endpoint_id: Mapped[int] = mapped_column(Integer)       # references endpoint.id (see MESSAGE_REFERENCES)
    # Copied from the event so the log filters without a join.
    action: Mapped[str] = mapped_column(String(100))
    customer: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(10), default=NEW)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_code: Mapped[int | None] = mapped_column(Integer)
    # response_code // 100 (2 for 2xx ...), so the log's class filters use an index.
    response_class: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Due time of the next attempt, as the log shows it; NULL once the message is final. Delivery
    # reads and leases the message's PendingMessage row, written in the same transaction.
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    resend_of_id: Mapped[int | None] = mapped_column(ForeignKey("message.id", ondelete="SET NULL"))
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)

    event: Mapped[Event] = relationship(back_populates="messages", lazy="joined")
    endpoint: Mapped[Endpoint] = relationship(lazy="joined")
    pending: Mapped[PendingMessage | None] = relationship(lazy="select", viewonly=True)

    __table_args__ = (
        *MESSAGE_REFERENCES,
        # The queue view: each endpoint's oldest waiting message (ids grow with time), and how many wait.
        Index(
            "ix_message_due",
            "endpoint_id",
            "id",
            sqlite_where=text("next_attempt_at IS NOT NULL"),
            postgresql_where=text("next_attempt_at IS NOT NULL"),
        ),
        # The queue view: each endpoint's next attempt per status.
        Index(
            "ix_message_pending",
            "endpoint_id",
            "status",
            "next_attempt_at",
            sqlite_where=text("next_attempt_at IS NOT NULL"),
            postgresql_where=text("next_attempt_at IS NOT NULL"),
        ),
        # One index per log filter, each ending in id for keyset paging.
        Index("ix_message_status_id", "status", "id"),
        Index("ix_message_action_id", "action", "id"),
        # varchar_pattern_ops: the customer filter is a prefix (LIKE 'abc%'), see migration 0006.
        Index("ix_message_customer_id", "customer", "id", postgresql_ops={"customer": "varchar_pattern_ops"}),
        Index("ix_message_endpoint_id_id", "endpoint_id", "id"),
        Index("ix_message_response_code_id", "response_code", "id"),
        Index("ix_message_response_class_id", "response_class", "id"),
        Index("ix_message_created_at", "created_at"),
        Index("ix_message_event_id", "event_id"),
        # Partial: most messages are no resend, and an index entry fewer is less to write per update.
        Index("ix_message_resend_of_id", "resend_of_id", sqlite_where=text("resend_of_id IS NOT NULL"),
              postgresql_where=text("resend_of_id IS NOT NULL")),
        # At most one resend of a message in flight: repeated clicks and bulk resends stay idempotent.
        Index(
            "uq_message_pending_resend",
            "resend_of_id",
            unique=True,
            sqlite_where=text("resend_of_id IS NOT NULL AND status IN ('queued', 'resent')"),
            postgresql_where=text("resend_of_id IS NOT NULL AND status IN ('queued', 'resent')"),
        ),
    )

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def is_being_sent(self) -> bool:
        return self.pending is not None and self.pending.lease_owner is not None


class PendingMessage(db.Model):
    """A message still to be sent, as delivery sees it: due when, a retry or not, held by which worker.

    One row per message whose ``next_attempt_at`` is set, deleted when it ends. Apart from ``message``
    so that claiming (leasing rows) and rescheduling touch a narrow row with three small indexes, not
    the log's row and its dozen filter indexes, and so that a claim walks only what is still to be sent:
    on ``message`` the query planner, misled by statistics taken during a burst, walked delivered
    messages or sorted the whole backlog on every claim.
    """

    # references message.id (see MESSAGE_REFERENCES)
    message_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    endpoint_id: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime)
    is_retry: Mapped[bool] = mapped_column(Boolean, default=False)  # the message's status is resent
    # Set while one worker holds the message (claim → outcome written).
    lease_owner: Mapped[str | None] = mapped_column(String(36))
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        sqlite_only_reference("message_id", "message.id", ondelete="CASCADE"),
        # A claim walks one endpoint's pending messages oldest first and stops after LIMIT rows.
        Index("ix_pending_message_endpoint", "endpoint_id", "message_id"),
        # Renewals (a worker's leases) and the sweep (expired ones) look only at what is leased.
        Index(
            "ix_pending_message_leased",
            "lease_until",
            sqlite_where=text("lease_owner IS NOT NULL"),
            postgresql_where=text("lease_owner IS NOT NULL"),
        ),
    )


# Attempt durations are counted in these buckets (upper bounds, ms); the last one is open.
DURATION_BUCKETS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
# Emit-to-delivery latency (message created -> its successful attempt ended), upper bounds in ms:
# 100 ms .. 1 day; the last bucket is open.
LATENCY_BUCKETS_MS = (100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000,
                      21_600_000, 86_400_000)


class _DeliveryStats:
    """Per endpoint and period: what its attempts did. Kept by the delivery path as it writes outcomes."""

    endpoint_id: Mapped[int] = mapped_column(Integer)
    start: Mapped[dt.datetime] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)  # attempts answered 2xx
    done: Mapped[int] = mapped_column(Integer, default=0)       # messages that ended done
    failed: Mapped[int] = mapped_column(Integer, default=0)     # messages that ended failed
    retried: Mapped[int] = mapped_column(Integer, default=0)    # attempts followed by a retry
    duration_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    # d0..d10: attempts per DURATION_BUCKETS_MS bucket (d10: longer than the last bound).
    d0: Mapped[int] = mapped_column(Integer, default=0)
    d1: Mapped[int] = mapped_column(Integer, default=0)
    d2: Mapped[int] = mapped_column(Integer, default=0)
    d3: Mapped[int] = mapped_column(Integer, default=0)
    d4: Mapped[int] = mapped_column(Integer, default=0)
    d5: Mapped[int] = mapped_column(Integer, default=0)
    d6: Mapped[int] = mapped_column(Integer, default=0)
    d7: Mapped[int] = mapped_column(Integer, default=0)
    d8: Mapped[int] = mapped_column(Integer, default=0)
    d9: Mapped[int] = mapped_column(Integer, default=0)
    d10: Mapped[int] = mapped_column(Integer, default=0)
    # Messages that ended done: the sum of their emit-to-delivery latencies, and l0..l14 the count per
    # LATENCY_BUCKETS_MS bucket (l14: longer than the last bound).
    latency_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    l0: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    l1: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    l2: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    l3: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    l4: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    l5: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    l6: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    l7: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    l8: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    l9: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    l10: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    l11: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    l12: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    l13: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    l14: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class StatsMinute(_DeliveryStats, db.Model):
    __tablename__ = "stats_minute"
    __table_args__ = (PrimaryKeyConstraint("endpoint_id", "start"),)


class StatsHour(_DeliveryStats, db.Model):
    __tablename__ = "stats_hour"
    __table_args__ = (PrimaryKeyConstraint("endpoint_id", "start"),)


class StatsDay(_DeliveryStats, db.Model):
    """A UTC day: the dashboard's 30 days in 30 rows per endpoint, not 720."""

    __tablename__ = "stats_day"
    __table_args__ = (PrimaryKeyConstraint("endpoint_id", "start"),)


class Attempt(db.Model):
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(BigId, index=True)  # references message.id (see MESSAGE_REFERENCES)
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    request_method: Mapped[str] = mapped_column(String(10))
    request_url: Mapped[str] = mapped_column(Text)
    request_headers_json: Mapped[str] = mapped_column("request_headers", Text, default="[]")
    request_body: Mapped[str] = mapped_column(Text, default="")
    response_code: Mapped[int | None] = mapped_column(Integer)
    response_headers_json: Mapped[str] = mapped_column("response_headers", Text, default="[]")
    response_body: Mapped[str] = mapped_column(Text, default="")
    response_truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (sqlite_only_reference("message_id", "message.id", ondelete="CASCADE"),)

    @property
    def request_headers(self) -> list[list[str]]:
        return json.loads(self.request_headers_json)

    @property
    def response_headers(self) -> list[list[str]]:
        return json.loads(self.response_headers_json)


class User(db.Model):
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class OperatorSession(db.Model):
    """One logged-in browser. The cookie holds a random token; only its SHA-256 is stored."""

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class ApiToken(db.Model):
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # SHA-256 of the token: the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
