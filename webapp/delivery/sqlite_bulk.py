"""SQLite: a batch of outcomes' new statuses in three statements whatever its size, the rows as one JSON list.

Each statement is stepped once, reads its rows from ``json_each`` and finds each
message and pending row by key (as ``storage.bulk`` inserts rows), where an
executemany is stepped per row and Python's sqlite3 lets go of the interpreter
around every step. The counterpart of ``postgresql_bulk``.
"""
from __future__ import annotations

from sqlalchemy import Connection

from ..storage import bulk
from ..storage.models import Message

# A row of the JSON list: the message's id, then the columns the outcome sets.
_ROW = ("id", "status", "attempts", "response_code", "response_class", "last_attempt_at", "next_attempt_at")


def _field(name: str) -> str:
    return f"json_extract(v.value, '$[{_ROW.index(name)}]')"


# Only where the lease is still ours; the message first, while the lease it checks is still there.
RECORD_STATUSES = (
    "UPDATE message SET " + ", ".join(f"{name} = {_field(name)}" for name in _ROW[1:]) + " "
    f"FROM json_each(?) AS v WHERE message.id = {_field('id')} AND EXISTS (SELECT 1 FROM pending_message "
    "WHERE pending_message.message_id = message.id AND pending_message.lease_owner = ?)"
)
FINISH = "DELETE FROM pending_message WHERE message_id IN (SELECT value FROM json_each(?)) AND lease_owner = ?"
RESCHEDULE = (
    "UPDATE pending_message SET next_attempt_at = json_extract(v.value, '$[1]'), is_retry = 1, "
    "lease_owner = NULL, lease_until = NULL FROM json_each(?) AS v "
    "WHERE pending_message.message_id = json_extract(v.value, '$[0]') AND pending_message.lease_owner = ?"
)


def record_statuses(conn: Connection, owner: str, rows: list[dict]) -> None:
    """The messages' new statuses (``records.record_many``'s rows), only where the lease is still ours."""
    values = bulk.processed(conn.dialect, Message.__table__, _ROW,
                            [(row["b_id"], *(row[name] for name in _ROW[1:])) for row in rows])
    conn.exec_driver_sql(RECORD_STATUSES, (bulk.as_json(values), owner))
    ended = [row["b_id"] for row in rows if row["next_attempt_at"] is None]
    retried = [(value[0], value[-1]) for value in values if value[-1] is not None]
    if ended:
        conn.exec_driver_sql(FINISH, (bulk.as_json(ended), owner))
    if retried:
        conn.exec_driver_sql(RESCHEDULE, (bulk.as_json(retried), owner))
