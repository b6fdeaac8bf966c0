"""What a team writes first: a message table and one function that delivers one message.

Shared by both baselines (RQ and Celery), which differ only in the queue.
``deliver_message(id)`` loads the row, marks it ``sending`` (commit), posts
it with a plain ``requests.post`` (a new connection every time), and marks it
``done`` or ``failed`` (commit): one job, two commits, one connection per
message. The SQLite engine gets the product's own settings (WAL, busy
timeout, synchronous=NORMAL), so the comparison is about the design, not
the database tuning.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from functools import lru_cache

import requests
from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from .stack import sqlalchemy_url
from .workload import naive_payload

INSERT_CHUNK = 1_000


class Base(DeclarativeBase):
    pass


class NaiveMessage(Base):
    __tablename__ = "naive_message"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_code: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _tune_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "busy_timeout=30000", "synchronous=NORMAL"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


@lru_cache(maxsize=None)
def engine_for(url: str):
    engine = create_engine(sqlalchemy_url(url))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _tune_sqlite)
    return engine


def engine():
    """The engine of ``BENCH_DATABASE_URL`` (one per process, as an app module would keep it)."""
    return engine_for(os.environ["BENCH_DATABASE_URL"])


def create_schema(url: str) -> None:
    Base.metadata.create_all(engine_for(url))


def insert_messages(url: str, receiver_url: str, first: int, count: int) -> list[int]:
    """One transaction inserting ``count`` queued messages; returns their ids."""
    rows = [{"url": receiver_url, "payload": json.dumps(naive_payload(number)), "status": "queued"}
            for number in range(first, first + count)]
    with Session(engine_for(url)) as session:
        ids = session.scalars(insert(NaiveMessage).returning(NaiveMessage.id, sort_by_parameter_order=True),
                              rows).all()
        session.commit()
    return list(ids)


def deliver_message(message_id: int) -> None:
    with Session(engine()) as session:
        message = session.get(NaiveMessage, message_id)
        message.status = "sending"
        message.attempts += 1
        message.updated_at = utcnow()
        session.commit()
        try:
            response = requests.post(message.url, json=json.loads(message.payload), timeout=10)
            message.response_code = response.status_code
            message.status = "done" if response.ok else "failed"
        except requests.RequestException:
            message.status = "failed"
        message.updated_at = utcnow()
        session.commit()


def not_finished(url: str) -> int:
    with engine_for(url).connect() as connection:
        return connection.execute(
            select(func.count()).select_from(NaiveMessage).where(NaiveMessage.status.in_(("queued", "sending")))
        ).scalar()


def count_done(url: str) -> int:
    with engine_for(url).connect() as connection:
        return connection.execute(
            select(func.count()).select_from(NaiveMessage).where(NaiveMessage.status == "done")
        ).scalar()
