"""Export the filtered log as CSV or PSV, streamed from a server-side cursor.

Memory stays flat however long the log: rows are fetched in chunks and written
out as they come. Text cells that a spreadsheet would run as a formula are
prefixed with an apostrophe.
"""
from __future__ import annotations

import csv
import io
from typing import Iterator

from sqlalchemy import select

from ...extensions import db
from ...storage.models import Endpoint, Message
from .filters import LogFilter, apply

DELIMITERS = {"csv": ",", "psv": "|"}
HEADER = ["created_at", "action", "customer", "response_code", "status", "endpoint",
          "attempts", "message_id", "event_id", "last_attempt_at"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK_ROWS = 1000


def neutralise(cell: str) -> str:
    """Keep spreadsheets from evaluating ``=HYPERLINK(...)`` and friends (CSV injection)."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def iso(moment) -> str:
    return moment.isoformat(timespec="seconds") + "Z" if moment else ""


def rows(log_filter: LogFilter) -> Iterator[list[str]]:
    query = apply(
        select(Message.created_at, Message.action, Message.customer, Message.response_code,
               Message.status, Endpoint.name, Message.attempts, Message.id, Message.event_id,
               Message.last_attempt_at)
        .join(Endpoint, Endpoint.id == Message.endpoint_id),
        log_filter,
    ).order_by(Message.id.desc())
    result = db.session.execute(query.execution_options(stream_results=True, yield_per=CHUNK_ROWS))
    for created, action, customer, code, status, endpoint, attempts, message_id, event_id, last in result:
        yield [iso(created), neutralise(action), neutralise(customer), "" if code is None else str(code),
               status, neutralise(endpoint), str(attempts), str(message_id), event_id, iso(last)]


def stream(log_filter: LogFilter, fmt: str) -> Iterator[str]:
    """The file as text chunks of about CHUNK_ROWS rows each."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=DELIMITERS[fmt], lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(HEADER)
    for count, row in enumerate(rows(log_filter), start=1):
        writer.writerow(row)
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
