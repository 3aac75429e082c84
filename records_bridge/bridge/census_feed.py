"""Live ICU occupancy for the facility registry: the hub's ward counts, summed per facility, sent as they change.

Every ``every_s`` the feed reads the hub's ``GET /api/census`` (counts only)
and, for each facility in ``wards`` (hub ward -> facility id), adds up its
wards' beds, occupied, free, NEWS2 >= 7 and silent monitors, and ``PUT``s them
to ``/api/facilities/{id}/occupancy`` with the time the hub counted them. A
facility is sent when its counts change, and at least every ``heartbeat_s``
otherwise, so the registry can tell "unchanged" from "not heard from": when the
hub or the bridge stops, the figures age and the registry shows the facility as
stale, never as free. Nothing is queued: only the newest count matters, and an
old one is never sent late. A mapped ward the hub does not report (not yet
registered, or misspelt in the mapping) adds nothing and is logged once; a
facility none of whose wards the hub reports is not sent at all, so the
registry shows it stale rather than as an ICU of no beds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from records_bridge.bridge.hub_client import HubClient
from records_bridge.bridge.outcomes import Poison, Retry
from records_bridge.bridge.service_client import ServiceClient

log = logging.getLogger(__name__)

COUNTS = ("beds", "occupied", "free", "news2_high", "monitors_offline")


def facility_counts(wards: list[dict[str, Any]], mapping: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """The counts of each mapped facility the hub reports at least one ward of: the sum over those wards."""
    by_ward = {w.get("ward"): w for w in wards}
    out: dict[str, dict[str, int]] = {}
    for ward, facility in mapping.items():
        got = by_ward.get(ward)
        if got is None:
            continue
        row = out.setdefault(facility, dict.fromkeys(COUNTS, 0))
        for key in COUNTS:
            value = got.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise Retry(f"the hub's census has no count {key!r} for ward {ward!r}")
            row[key] += value
    return out


class CensusFeed:
    def __init__(self, hub: HubClient, registry: ServiceClient, wards: Mapping[str, str], source: str, *, every_s: float = 5.0,
                 heartbeat_s: float = 60.0) -> None:  # fmt: skip
        self.hub = hub
        self.registry = registry
        self.wards = dict(wards)
        self.source = source
        self.every_s = every_s
        self.heartbeat_s = heartbeat_s
        self.sent = 0  # occupancy updates the registry took
        self._last: dict[str, tuple[tuple[int, ...], float]] = {}  # facility -> (counts, loop time sent)
        self._missing_logged: set[str] = set()

    async def run(self) -> None:
        """Until cancelled; a hub or registry that fails is logged and tried again next round (nothing is queued)."""
        while True:
            try:
                await self.once()
            except Retry as exc:
                log.warning("facility occupancy: %s", exc)
            await asyncio.sleep(self.every_s)

    async def once(self) -> None:
        now, wards = await self.hub.census()
        for ward in self.wards.keys() - {w.get("ward") for w in wards} - self._missing_logged:
            log.warning("facility occupancy: the hub reports no ward %r (mapped to %s) yet", ward, self.wards[ward])
            self._missing_logged.add(ward)
        loop = asyncio.get_running_loop()
        for facility, counts in facility_counts(wards, self.wards).items():
            key = tuple(counts[k] for k in COUNTS)
            last = self._last.get(facility)
            if last is not None and last[0] == key and loop.time() - last[1] < self.heartbeat_s:
                continue
            body = {"as_of": now, "icu_beds": counts["beds"], "occupied": counts["occupied"], "free": counts["free"],
                    "news2_high": counts["news2_high"], "monitors_offline": counts["monitors_offline"], "source": self.source}  # fmt: skip
            try:
                await self.registry.call("PUT", f"/api/facilities/{facility}/occupancy", body)
            except Poison as exc:  # the registry does not know this facility, or refuses the figures: say so every round
                log.error("facility occupancy for %s refused: %s", facility, exc)
                continue
            self._last[facility] = (key, loop.time())
            self.sent += 1
