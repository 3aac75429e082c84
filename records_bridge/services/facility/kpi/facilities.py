"""Where the KPI engine learns about facilities: a callable given the database connection, answering the registry's
facilities (id, name, state, district, staffed ICU beds). The registry plugs its tables in; tests pass a list."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection


@dataclass(frozen=True, slots=True)
class FacilityRef:
    facility_id: str  # the ABDM Health Facility Registry id the bridge maps wards to
    name: str
    state: str
    district: str
    staffed_icu_beds: int | None  # today's staffed count (None: not known; occupancy is then not computed)


Facilities = Callable[[Connection], Sequence[FacilityRef]]


def fixed(refs: Sequence[FacilityRef]) -> Facilities:
    """A ``Facilities`` that always answers ``refs`` (tests, the benchmark)."""
    frozen = tuple(refs)
    return lambda _conn: frozen
