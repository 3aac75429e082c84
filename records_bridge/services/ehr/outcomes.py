"""OperationOutcome: the body of every error the EHR answers, and the exception that carries one to the HTTP layer."""

from __future__ import annotations

from typing import Any

MAX_DIAGNOSTICS = 2000

# HTTP status -> FHIR issue-type code (http://hl7.org/fhir/issue-type)
ISSUE_CODE: dict[int, str] = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    412: "multiple-matches",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    500: "exception",
    503: "transient",
}


def operation_outcome(diagnostics: str, *, code: str = "processing", severity: str = "error") -> dict[str, Any]:
    """An OperationOutcome with one issue; ``diagnostics`` is cut to ``MAX_DIAGNOSTICS`` characters."""
    if len(diagnostics) > MAX_DIAGNOSTICS:
        diagnostics = diagnostics[: MAX_DIAGNOSTICS - 1] + "…"
    return {"resourceType": "OperationOutcome", "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}]}


class FhirError(Exception):
    """An answer other than success: the HTTP status and what the OperationOutcome says."""

    def __init__(self, status: int, diagnostics: str, *, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.diagnostics = diagnostics
        self.code = code or ISSUE_CODE.get(status, "processing")
        self.headers = headers or {}

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.diagnostics, code=self.code)
