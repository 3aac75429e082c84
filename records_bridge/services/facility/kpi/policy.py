"""Who may do what with the KPIs, by the hub's roles (``hub_identity``).

- ``READERS``: every signed-in member of staff reads the KPIs, their CSV and the pages (figures about facilities,
  never about a patient).
- ``FEEDERS``: only the records bridge (role ``records``) posts the hub's events; no person does.
"""

from __future__ import annotations

READERS: tuple[str, ...] = ("admin", "intensivist", "teleicu_nurse", "ward_nurse", "viewer")
FEEDERS: tuple[str, ...] = ("records",)
