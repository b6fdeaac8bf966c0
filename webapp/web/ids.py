"""Database ids in paths and query strings: ASCII digits within the column's range, or a clean refusal.

Werkzeug's ``int`` converter takes any Unicode digit ("٣" is 3) and any size, which
the database then refuses with an overflow (a 500). Here a path id out of range is
a 404, and a query-string id is an InvalidInput naming it.
"""
from __future__ import annotations

from werkzeug.exceptions import NotFound
from werkzeug.routing import BaseConverter

from ..storage.ids import MAX_BIG_ID, MAX_ID


class IdConverter(BaseConverter):
    """``<id:endpoint_id>``: 1 .. 2**31-1, ASCII digits only."""

    regex = r"[0-9]{1,19}"
    weight = 50  # as werkzeug's int converter
    maximum = MAX_ID

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= self.maximum:
            # Not werkzeug's ValidationError: with it, a PATCH to a too-large id answers 405,
            # because the GET rule of the same path already "matched but for the method".
            raise NotFound(f"no such id: ids are whole numbers from 1 to {self.maximum}")
        return number

    def to_url(self, value) -> str:
        return str(int(value))


class BigIdConverter(IdConverter):
    """``<bigid:message_id>``: 1 .. 2**63-1."""

    maximum = MAX_BIG_ID


CONVERTERS = {"id": IdConverter, "bigid": BigIdConverter}
