"""The one error type for bad input, whichever way it came in."""


class InvalidInput(ValueError):
    """Input rejected, naming the field at fault (``data``, ``timeout``, ...)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem

    def as_dict(self) -> dict:
        return {"field": self.field, "error": self.problem}
