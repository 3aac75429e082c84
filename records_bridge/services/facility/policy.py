"""Who may do what in the facility registry, by the hub's roles (``hub_identity``).

| role | may |
| --- | --- |
| ``admin`` | create and update facilities and their capacity, verify them, import a CSV file; read everything |
| ``intensivist``, ``teleicu_nurse``, ``ward_nurse``, ``viewer`` | read: the GeoJSON API, a facility, the map page |
| ``records`` (the records bridge's account at the hub) | write a facility's live occupancy, nothing else (not even read) |
"""

from __future__ import annotations

ADMIN: tuple[str, ...] = ("admin",)
READERS: tuple[str, ...] = ("admin", "intensivist", "teleicu_nurse", "ward_nurse", "viewer")
OCCUPANCY_WRITERS: tuple[str, ...] = ("records",)
