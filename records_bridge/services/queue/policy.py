"""Who may do what in the queue service, by the hub's roles (``hub_identity``), and the other credentials.

- ``admin``: maintains facilities, departments, counters, queues; makes kiosk and board credentials.
- ``STAFF`` (the people at a registration counter or a consulting room): issue tokens, work the queue.
- ``READERS``: see queues, tokens and metrics (``viewer`` added to the staff).
- ``BOOKERS``: book slots (``records``: the records bridge books follow-ups for discharged ICU patients).
- a kiosk credential (``qk_…``, per facility) issues walk-in tokens for that facility's queues only;
- a board key (``qb_…``, per facility) shows that facility's display board only;
- the scan-and-share endpoint is public and rate-limited.
"""

from __future__ import annotations

ADMIN: tuple[str, ...] = ("admin",)
STAFF: tuple[str, ...] = ("admin", "intensivist", "teleicu_nurse", "ward_nurse")
READERS: tuple[str, ...] = (*STAFF, "viewer")
BOOKERS: tuple[str, ...] = ("records", "admin")
