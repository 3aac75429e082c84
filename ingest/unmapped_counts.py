"""Counts of unmapped observations the hub accepted since it started, per (device, coding system, code).

Feeds ``/api/stats`` and ``/metrics`` (one labelled counter). What is stored
over time, with each code's last value, comes from the store
(``GET /api/unmapped``); this is the live rate a dashboard watches.
"""

from __future__ import annotations

from collections import Counter

from wire.messages import UnmappedObservation

MAX_CODES = 10_000  # distinct (device, system, code) counted; more are summed in ``overflow``


class UnmappedCounts:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.overflow = 0

    def add(self, u: UnmappedObservation) -> None:
        key = (u.device, u.system, u.code)
        if key in self.counts or len(self.counts) < MAX_CODES:
            self.counts[key] += 1
        else:
            self.overflow += 1

    def rows(self) -> list[dict[str, str | int]]:
        """One row per code, for ``Hub.stats`` (and so for ``/metrics``), in a stable order."""
        return [{"device": d, "system": s, "code": c, "count": n} for (d, s, c), n in sorted(self.counts.items())]
