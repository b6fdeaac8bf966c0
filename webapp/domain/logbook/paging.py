"""Keyset pages of the log, newest first: Newest, Newer and Older, and "N new" since a page was shown.

A page is read from a cursor, never an offset: Older is ``id < before ORDER BY id DESC``,
Newer is ``id > after ORDER BY id ASC`` (then shown newest first). Each is one seek on
the filter's index, as fast on page 10,000 as on page 1. Whether there is a page on the
other side is one more seek (LIMIT 1).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ...errors import InvalidInput
from ...extensions import db
from ...storage.models import Message
from .filters import LogFilter, apply

PAGE_SIZE = 50
NEW_CAP = 999  # "more than 999 new": counting further would cost more than it tells


@dataclass(frozen=True)
class Page:
    messages: list[Message]
    older: int | None   # the ``before`` cursor of the next older page, if there is one
    newer: int | None   # the ``after`` cursor of the next newer page, if there is one

    @property
    def newest_id(self) -> int | None:
        return self.messages[0].id if self.messages else None

    @property
    def is_newest(self) -> bool:
        return self.newer is None


def page(log_filter: LogFilter, before: int | None = None, after: int | None = None,
         size: int = PAGE_SIZE) -> Page:
    if before is not None and after is not None:
        raise InvalidInput("after", "cannot be both older and newer than another page: open the Log tab again")
    # A waiting message's reason asks whether a worker is sending it: its pending row, joined by key (a
    # second query by the page's ids would have a text per page length: storage/id_lists.py).
    query = apply(select(Message).options(joinedload(Message.pending)), log_filter)
    if after is not None:
        rows = list(db.session.scalars(query.where(Message.id > after).order_by(Message.id).limit(size + 1)))
        if len(rows) <= size:
            return page(log_filter, size=size)  # reached the top: that is the newest page, full
        rows = rows[:size][::-1]
        return Page(rows, older=rows[-1].id if _exists(log_filter, Message.id < rows[-1].id) else None,
                    newer=rows[0].id)
    if before is not None:
        query = query.where(Message.id < before)
    rows = list(db.session.scalars(query.order_by(Message.id.desc()).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    newer = None
    if before is not None:
        edge = rows[0].id if rows else before - 1
        newer = edge if _exists(log_filter, Message.id > edge) else None
    return Page(rows, older=rows[-1].id if more else None, newer=newer)


def count_new(log_filter: LogFilter, after: int, cap: int = NEW_CAP) -> int:
    """How many messages in the filter are newer than ``after``, counting at most ``cap`` + 1."""
    capped = apply(select(Message.id), log_filter).where(Message.id > after).limit(cap + 1).subquery()
    return db.session.scalar(select(func.count()).select_from(capped)) or 0


def _exists(log_filter: LogFilter, condition) -> bool:
    return db.session.scalar(apply(select(Message.id), log_filter).where(condition).limit(1)) is not None
