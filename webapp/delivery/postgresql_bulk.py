"""PostgreSQL: a batch of outcomes' new statuses in one statement, whatever its size, each column one array.

An executemany costs a parse-bind-execute per row in psycopg (pipelined, but each
row still goes through the driver's Python code). With ``unnest`` of one array per
column the text never changes (it is prepared once per connection) and a batch of
64 rows costs as much driver work as one row; the arrays go in binary (as
``storage.bulk`` does for the attempts' INSERT). Hence psycopg's own cursor, on the
transaction's connection, rather than SQLAlchemy (which binds in text).
SQLite has its own: ``sqlite_bulk``.
"""
from __future__ import annotations

from sqlalchemy import Connection

STATUS_TYPES = {
    "b_id": "bigint", "status": "varchar", "attempts": "integer", "response_code": "integer",
    "response_class": "integer", "last_attempt_at": "timestamp", "next_attempt_at": "timestamp",
}


def _unnest(types: dict[str, str]) -> str:
    return "unnest(" + ", ".join(f"CAST(%({name})b AS {kind}[])" for name, kind in types.items()) + ")"


# One statement: the pending rows still leased by us end (deleted) or become due again, and only the
# messages they belong to take their new status. Every part sees the rows as they were before it,
# and the DELETE and UPDATE recheck the lease on the rows they lock. The lease owner is joined (``me``),
# not compared with a constant: as a constant, the planner found the pending rows through the small
# index of leased rows and compared each with every outcome of the batch (200 x 200 comparisons at a
# batch of 200, 9 of the statement's 13.5 ms in EXPLAIN ANALYZE); joined, each finds its row by key.
_VALUES = f"{_unnest(STATUS_TYPES)} AS v({', '.join(STATUS_TYPES).replace('b_id', 'id')})"
RECORD_STATUSES = (
    f"WITH v AS (SELECT * FROM {_VALUES}), "
    "me AS MATERIALIZED (SELECT CAST(%(b_owner)s AS varchar) AS owner), "
    "ended AS (DELETE FROM pending_message p USING v, me WHERE p.message_id = v.id AND v.next_attempt_at IS NULL "
    "AND p.lease_owner = me.owner RETURNING p.message_id), "
    "retried AS (UPDATE pending_message p SET next_attempt_at = v.next_attempt_at, is_retry = true, "
    "lease_owner = NULL, lease_until = NULL FROM v, me WHERE p.message_id = v.id AND v.next_attempt_at IS NOT NULL "
    "AND p.lease_owner = me.owner RETURNING p.message_id) "
    "UPDATE message SET status = v.status, attempts = v.attempts, response_code = v.response_code, "
    "response_class = v.response_class, last_attempt_at = v.last_attempt_at, next_attempt_at = v.next_attempt_at "
    "FROM v WHERE message.id = v.id "
    "AND message.id IN (SELECT message_id FROM ended UNION ALL SELECT message_id FROM retried)"
)


def columns(rows: list[dict], names) -> dict[str, list]:
    return {name: [row[name] for row in rows] for name in names}


def record_statuses(conn: Connection, owner: str, rows: list[dict]) -> None:
    """The messages' new statuses, only where the lease is still ours (see ``records``)."""
    _execute(conn, RECORD_STATUSES, {**columns(rows, STATUS_TYPES), "b_owner": owner})


def _execute(conn: Connection, sql: str, params: dict) -> None:
    with conn.connection.driver_connection.cursor(binary=True) as cursor:
        cursor.execute(sql, params, prepare=True)
