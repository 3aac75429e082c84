"""Alarm priorities in IEC 60601-1-8 terms, with their FHIR DeviceAlert codes (``high``, ``medium``, ``low``)."""

from __future__ import annotations

from enum import IntEnum


class Priority(IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def code(self) -> str:
        """FHIR DeviceAlert priority code."""
        return self.name.lower()
