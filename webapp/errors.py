"""The one error type for bad input, whichever way it came in."""
from __future__ import annotations


class InvalidInput(ValueError):
    """Input rejected, naming the field at fault (``data``, ``timeout``, ...) and, when the
    field takes one of a fixed set of values, which ones (``allowed``)."""

    def __init__(self, field: str, problem: str, allowed: tuple[str, ...] | None = None):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
        self.allowed = allowed
