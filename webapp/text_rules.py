"""What a stored text value may contain: one rule for forms, the API, emit() and the log filters.

Control characters (NUL, CR, LF, TAB, DEL, the C1 range, U+2028/U+2029) are refused:
PostgreSQL cannot store NUL, and a line break in a value that reaches a header, a
key or a CSV cell changes its meaning. Lone surrogates (``"\\ud800"`` from JSON) are
not Unicode text at all: they cannot be encoded to UTF-8 for the database or the wire.
"""
from __future__ import annotations

import re

# Unicode categories Cc, Zl and Zp: C0 and C1 controls, DEL, U+2028, U+2029.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def control_character_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored as it is, or None."""
    problem = unencodable_problem(text)
    if problem:
        return problem
    found = CONTROL_CHARACTERS.search(text)
    if found:
        return (f"must not contain control characters such as line breaks or NUL "
                f"(it holds U+{ord(found.group()):04X})")
    return None


def unencodable_problem(text: str) -> str | None:
    """Only the lone-surrogate part of the rule, for free text such as event data (where JSON escapes controls)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # strict UTF-8 fails on lone surrogates only
        return f"must be valid Unicode text (it holds a lone surrogate, U+{ord(text[exc.start]):04X})"
    return None
