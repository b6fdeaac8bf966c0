"""A list of ids as one bound parameter: a statement's text stays the same for any number of ids.

A database driver keeps a prepared statement for each text it runs: Python's sqlite3 the last 128
per connection, psycopg a text it has run often. ``column IN (?, ?, ...)``, which SQLAlchemy
renders from a list on either database, has a new text for every length, as large as its list,
and a long-running process kept one of each length it met (a delivery worker: SQLite's memory
8 -> 52 MB over 100,000 deliveries). PostgreSQL takes the list as one array, SQLite as one JSON
list that ``json_each`` reads; each still looks the ids up by key.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ARRAY, JSON, ColumnElement, any_, bindparam, func, select

from ..extensions import db

DIALECTS = ("postgresql", "sqlite")


def matches_one_of(dialect: str, column, *, name: str | None = None,
                   ids: Iterable[int] | None = None) -> ColumnElement[bool]:
    """``column`` is one of the ids given at execution as ``name``, or of ``ids`` themselves."""
    value = {} if ids is None else {"value": list(ids)}
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type), **value))
    listed = func.json_each(bindparam(name, type_=JSON, **value)).table_valued("value")
    return column.in_(select(listed.c.value))


def one_of(column, ids: Iterable[int]) -> ColumnElement[bool]:
    """For a query of the app's database: ``column`` is one of ``ids``."""
    return matches_one_of(db.engine.dialect.name, column, ids=ids)
