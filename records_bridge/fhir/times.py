"""The hub's times (ms since the epoch, UTC) as FHIR instants and periods."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from records_bridge.fhir.contract import MappingError

HOUR_MS = 3_600_000
_LATEST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: FHIR years have four digits


def instant(ms: int) -> str:
    """``2024-05-01T10:00:00Z``, with milliseconds only when there are some.

    Raises ``MappingError`` for a time before 1970 or past year 9999 (a hub's clock never is).
    """
    if not 0 <= ms <= _LATEST_MS:
        raise MappingError(f"time out of range: {ms} ms since the epoch")
    whole = datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{ms % 1000:03d}Z" if ms % 1000 else f"{whole}Z"


def period(start: int | None, end: int | None = None) -> dict[str, Any]:
    """A FHIR Period; ``MappingError`` when it would end before it starts."""
    if start is not None and end is not None and end < start:
        raise MappingError(f"period ends ({end}) before it starts ({start})")
    out: dict[str, Any] = {}
    if start is not None:
        out["start"] = instant(start)
    if end is not None:
        out["end"] = instant(end)
    return out
