"""The schema: endpoints, events, messages, attempts, operators, their sessions and API tokens.

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
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT.
BigId = BigInteger().with_variant(Integer, "sqlite")

QUEUED, RESENT, DONE, FAILED = "queued", "resent", "done", "failed"
HEALTHY, FAILING = "healthy", "failing"
STATUSES = (QUEUED, RESENT, FAILED, DONE)
PENDING_STATUSES = (QUEUED, RESENT)


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
    # Basic password or AWS secret key, Fernet-encrypted (see webapp.storage.crypto).
    auth_secret_encrypted: Mapped[str | None] = mapped_column(Text)
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
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    ALL_ACTIONS = "*"

    @property
    def actions(self) -> list[str]:
        return json.loads(self.actions_json or "[]")

    @actions.setter
    def actions(self, value: list[str]) -> None:
        self.actions_json = json.dumps(sorted(set(value)))

    def wants(self, action: str) -> bool:
        selected = self.actions
        return self.ALL_ACTIONS in selected or action in selected

    @property
    def has_secret(self) -> bool:
        return bool(self.auth_secret_encrypted)


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


class Message(db.Model):
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoint.id"))
    # Copied from the event so the log filters without a join.
    action: Mapped[str] = mapped_column(String(100))
    customer: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(10), default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_code: Mapped[int | None] = mapped_column(Integer)
    # response_code // 100 (2 for 2xx ...), so the log's class filters use an index.
    response_class: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Due time of the next attempt; NULL once the message is final.
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Set while one worker holds the message (claim → outcome written).
    lease_owner: Mapped[str | None] = mapped_column(String(36))
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    resend_of_id: Mapped[int | None] = mapped_column(ForeignKey("message.id", ondelete="SET NULL"))
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)

    event: Mapped[Event] = relationship(back_populates="messages", lazy="joined")
    endpoint: Mapped[Endpoint] = relationship(lazy="joined")

    __table_args__ = (
        # Claims and the sweep only look at pending messages: keep that index small.
        # (endpoint_id, id) lets a claim walk one endpoint's pending messages oldest first
        # and stop after LIMIT rows, however large the backlog.
        Index(
            "ix_message_due",
            "endpoint_id",
            "id",
            sqlite_where=text("next_attempt_at IS NOT NULL"),
            postgresql_where=text("next_attempt_at IS NOT NULL"),
        ),
        # A failing endpoint's claims look for its messages in retry, and for the oldest untried one.
        Index(
            "ix_message_pending",
            "endpoint_id",
            "status",
            "next_attempt_at",
            sqlite_where=text("next_attempt_at IS NOT NULL"),
            postgresql_where=text("next_attempt_at IS NOT NULL"),
        ),
        Index(
            "ix_message_leased",
            "lease_until",
            sqlite_where=text("lease_owner IS NOT NULL"),
            postgresql_where=text("lease_owner IS NOT NULL"),
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
        Index("ix_message_resend_of_id", "resend_of_id"),
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
        return self.status in (DONE, FAILED)


# Attempt durations are counted in these buckets (upper bounds, ms); the last one is open.
DURATION_BUCKETS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)


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


class StatsMinute(_DeliveryStats, db.Model):
    __tablename__ = "stats_minute"
    __table_args__ = (PrimaryKeyConstraint("endpoint_id", "start"),)


class StatsHour(_DeliveryStats, db.Model):
    __tablename__ = "stats_hour"
    __table_args__ = (PrimaryKeyConstraint("endpoint_id", "start"),)


class Attempt(db.Model):
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id", ondelete="CASCADE"), index=True)
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

    @property
    def request_headers(self) -> list[list[str]]:
        return json.loads(self.request_headers_json)

    @property
    def response_headers(self) -> list[list[str]]:
        return json.loads(self.response_headers_json)

    @property
    def succeeded(self) -> bool:
        return self.response_code is not None and 200 <= self.response_code < 300


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
