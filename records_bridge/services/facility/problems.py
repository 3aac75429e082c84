"""Errors of the facility registry, answered as RFC 9457 problem JSON: the queue service's ``Problem`` (status,
detail, a stable ``reason`` word), with ``errors`` added where one request has several (a CSV import names every
line and field it refused)."""

from __future__ import annotations

from typing import Any

from records_bridge.services.facility.fields import FieldError
from records_bridge.services.problems import PROBLEM_JSON, Problem, problem_response

__all__ = ["PROBLEM_JSON", "FieldProblem", "Problem", "RowErrors", "invalid", "problem_response"]


class RowErrors(Problem):
    """A CSV file refused whole: ``errors`` lists ``{"line", "field", "detail"}`` (at most ``MAX_LISTED``)."""

    MAX_LISTED = 50

    def __init__(self, errors: list[dict[str, Any]], total: int) -> None:
        first = errors[0]
        more = f" (and {total - 1} more)" if total > 1 else ""
        super().__init__(422, f"nothing was imported: line {first['line']}, {first['field']}: {first['detail']}{more}", reason="invalid_rows")
        self.errors, self.total = errors[: self.MAX_LISTED], total

    def body(self) -> dict[str, Any]:
        return super().body() | {"errors": self.errors, "error_count": self.total}


class FieldProblem(Problem):
    """One field is wrong: a 422 whose body names it (``field``)."""

    def __init__(self, exc: FieldError) -> None:
        super().__init__(422, f"{exc.field}: {exc.detail}", reason="invalid_field")
        self.field = exc.field

    def body(self) -> dict[str, Any]:
        return super().body() | {"field": self.field}


def invalid(exc: FieldError) -> Problem:
    return FieldProblem(exc)
