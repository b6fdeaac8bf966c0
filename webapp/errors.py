"""The one error type for bad input, whichever way it came in."""
from __future__ import annotations


class InvalidInput(ValueError):
    """Input rejected, naming the field at fault (``data``, ``timeout``, ...), when the field
    takes one of a fixed set of values which ones (``allowed``), and in a list of inputs (a
    batch of events) which one, counted from 0 (``index``)."""

    def __init__(self, field: str, problem: str, allowed: tuple[str, ...] | None = None,
                 index: int | None = None):
        where = "" if index is None else f"[{index}]."
        shown = field or '""'  # an empty JSON key still needs a visible name
        super().__init__(f"{where}{shown}: {problem}")
        self.field = field
        self.problem = problem
        self.allowed = allowed
        self.index = index

    def at(self, index: int) -> InvalidInput:
        """The same problem, found in item ``index`` of a list."""
        return InvalidInput(self.field, self.problem, self.allowed, index)
