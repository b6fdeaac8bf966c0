"""Rows written by the hundred (emit_many, delivery's outcomes), straight on the DB-API cursor.

SQLAlchemy's executemany builds and type-processes a parameter dict per row; at 500
rows that costs more than the database's own work. Here each statement's text is
built once per table and columns, the values every row shares (a
timestamp, a status) are type-processed once per call, the columns that need it
(a timestamp, a boolean on SQLite) once per row, and the rows go in as
tuples. SQLite: one ``INSERT ... SELECT ... FROM json_each(?)`` with every row in
one JSON parameter, stepped once (an executemany steps per row, and Python's
sqlite3 lets go of the interpreter around each step, for the worker's lane
threads to take; emit_many went from about 14,000 to 15,500 events/s). Not a
multi-row ``VALUES``: it had a text per row count (storage/id_lists.py says what
that costs). PostgreSQL: one array per
column, expanded by ``unnest`` - the same text for any number of rows, so psycopg
parses it and the server plans it once per connection (a multi-row VALUES of
1,000 rows cost psycopg 70 ms of splitting its text on every call), and the
arrays go in binary.
``add_rows`` is the same for counters: a row whose key exists adds its
counts to that row instead (the delivery rollups).
It runs on the caller's connection, so inside its transaction.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Callable

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect


def insert_rows(connection: Connection, table: Table, columns: Sequence[str], rows: list[tuple],
                shared: dict[str, Any], returning: Sequence[str] = ()) -> list[tuple]:
    """INSERT ``rows`` (tuples in the order of ``columns``), each with the ``shared`` values too;
    the ``returning`` columns of every inserted row (in no promised order), or [] without them.
    """
    if not rows:
        return []
    dialect = connection.dialect
    if dialect.name == "postgresql":
        return _insert_arrays(connection, table, tuple(columns), rows, shared, tuple(returning))
    values = tuple(process(dialect, table, name, value) for name, value in shared.items())
    sql = json_statement(dialect, table, tuple(columns), tuple(shared), tuple(returning))
    found = connection.exec_driver_sql(sql, (*values, as_json(processed(dialect, table, tuple(columns), rows))))
    return found.all() if returning else []


def add_rows(connection: Connection, table: Table, key: Sequence[str], counters: Sequence[str],
             rows: list[tuple]) -> None:
    """INSERT ``rows`` (tuples in the order of ``key`` then ``counters``); where a row with that key
    exists, add each counter to it instead. Give the rows in key order: two writers then lock them
    in the same order."""
    if not rows:
        return
    dialect, names = connection.dialect, (*key, *counters)
    conflict = adding_on_conflict(dialect, table, tuple(key), tuple(counters))
    if dialect.name == "postgresql":
        _insert_arrays(connection, table, names, rows, {}, (), conflict)
        return
    # SQLite: an executemany, as ``json_statement`` is not worth its cost here: a rollup row holds 33
    # counters, and extracting each from JSON cost more than a step per row (measured in a fan-out).
    connection.exec_driver_sql(row_statement(dialect, table, names) + conflict, processed(dialect, table, names, rows))


def as_json(rows: list[tuple]) -> str:
    """Rows as the one JSON parameter of a SQLite statement (json_each reads it)."""
    return json.dumps(rows, ensure_ascii=False)


@lru_cache(maxsize=64)
def adding_on_conflict(dialect: Dialect, table: Table, key: tuple[str, ...], counters: tuple[str, ...]) -> str:
    quote = dialect.identifier_preparer.quote
    sums = ", ".join(f"{quote(name)} = {quote(table.name)}.{quote(name)} + excluded.{quote(name)}" for name in counters)
    return f" ON CONFLICT ({', '.join(quote(name) for name in key)}) DO UPDATE SET {sums}"


def process(dialect: Dialect, table: Table, name: str, value: Any) -> Any:
    processor = bind_processor(dialect, table, name)
    return processor(value) if processor else value


def bind_processor(dialect: Dialect, table: Table, name: str):
    """What SQLAlchemy would do to a value of this column before handing it to the driver, or None."""
    return table.c[name].type.dialect_impl(dialect).bind_processor(dialect)


def processed(dialect: Dialect, table: Table, columns: tuple[str, ...], rows: list[tuple]) -> list[tuple]:
    """The rows with each value of a column that needs it type-processed (the rest as they are)."""
    processors = column_processors(dialect, table, columns)
    if not processors:
        return rows
    done = []
    for row in rows:
        row = list(row)
        for index, processor in processors:
            row[index] = processor(row[index])
        done.append(tuple(row))
    return done


@lru_cache(maxsize=64)
def column_processors(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> tuple[tuple[int, Callable], ...]:
    """(position, processor) of the columns whose values SQLAlchemy type-processes."""
    processors = (bind_processor(dialect, table, name) for name in columns)
    return tuple((index, processor) for index, processor in enumerate(processors) if processor)


@lru_cache(maxsize=64)
def row_statement(dialect: Dialect, table: Table, names: tuple[str, ...]) -> str:
    """SQLite: one row's INSERT, for executemany."""
    quote = dialect.identifier_preparer.quote
    return (f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in names)}) "
            f"VALUES ({', '.join('?' * len(names))})")


@lru_cache(maxsize=64)
def json_statement(dialect: Dialect, table: Table, columns: tuple[str, ...], shared: tuple[str, ...],
                   returning: tuple[str, ...]) -> str:
    """SQLite: INSERT the rows of one JSON list of lists (the shared values as parameters before it)."""
    quote = dialect.identifier_preparer.quote
    values = [f"json_extract(value, '$[{i}]')" for i in range(len(columns))] + ["?"] * len(shared)
    sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in (*columns, *shared))}) "
           f"SELECT {', '.join(values)} FROM json_each(?)")
    if returning:
        sql += " RETURNING " + ", ".join(quote(name) for name in returning)
    return sql


def _insert_arrays(connection: Connection, table: Table, columns: tuple[str, ...], rows: list[tuple],
                   shared: dict[str, Any], returning: tuple[str, ...], on_conflict: str = "") -> list[tuple]:
    sql = array_statement(connection.dialect, table, columns, tuple(shared), returning, on_conflict)
    found = []
    with connection.connection.driver_connection.cursor(binary=True) as cursor:
        for first in range(0, len(rows), MAX_ROWS_PER_ARRAY):
            chunk = rows[first:first + MAX_ROWS_PER_ARRAY]
            params = {f"c{i}": [row[i] for row in chunk] for i in range(len(columns))}
            params.update({f"s{i}": value for i, value in enumerate(shared.values())})
            cursor.execute(sql, params, prepare=True)
            if returning:
                found += cursor.fetchall()
    return found


MAX_ROWS_PER_ARRAY = 10_000


@lru_cache(maxsize=64)
def array_statement(dialect: Dialect, table: Table, columns: tuple[str, ...], shared: tuple[str, ...],
                    returning: tuple[str, ...], on_conflict: str = "") -> str:
    quote = dialect.identifier_preparer.quote

    def sql_type(name: str) -> str:
        return table.c[name].type.compile(dialect=dialect)

    arrays = ", ".join(f"CAST(%(c{i})b AS {sql_type(name)}[])" for i, name in enumerate(columns))
    scalars = "".join(f", CAST(%(s{i})s AS {sql_type(name)})" for i, name in enumerate(shared))
    sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in (*columns, *shared))}) "
           f"SELECT *{scalars} FROM unnest({arrays}){on_conflict}")
    if returning:
        sql += " RETURNING " + ", ".join(quote(name) for name in returning)
    return sql
