"""Database ids as they come in text (paths, query strings): the columns' ranges and one parser.

Python's int() takes any Unicode digit ("٣" is 3) and any size, which the
database then refuses with an overflow; here an id is ASCII digits within its
column's range, or an InvalidInput naming the field.
"""
from __future__ import annotations

import re

from ..errors import InvalidInput

MAX_ID = 2**31 - 1        # Integer primary keys (endpoints): PostgreSQL int4
MAX_BIG_ID = 2**63 - 1    # BigId primary keys (messages, attempts): PostgreSQL int8
DIGITS = re.compile(r"[0-9]{1,19}")


def parse_id(value: str | None, field: str, maximum: int = MAX_BIG_ID) -> int | None:
    """An id from a query string: None when blank, else 1..maximum in ASCII digits, or InvalidInput."""
    if value is None or value == "":
        return None
    if not DIGITS.fullmatch(value) or not 1 <= int(value) <= maximum:
        raise InvalidInput(field, f"must be an id: a whole number from 1 to {maximum} in digits 0-9")
    return int(value)
