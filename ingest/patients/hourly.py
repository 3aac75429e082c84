"""Hourly vital-sign summaries for admitted patients: one validated value per parameter per clock hour.

The value is the **median** of the hour's valid samples (no status flag, a
number), read back from the sample store, with how many there were and the
first and last sample's time. An hour is summarised once it has been over for
``GRACE_MS`` (so late and back-filled samples count), for every encounter that
had a bed during it (a transfer mid-hour: both beds' samples, each for its
part). The ``vitals.hourly`` outbox event and the ``hourly_done`` marker are
written in one transaction, so a restart neither repeats nor skips an hour; at
start the hub catches up on at most ``CATCH_UP_H`` hours.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

import numpy as np

from ingest import outbox
from ingest.stores.base import StoreError, TrendPoint
from ingest.stores.group_commit import GroupCommitDatabase
from ingest.stores.portable_sql import Conn, insert_new
from wire.outbox_events import HourlyValue, VitalsHourly
from wire.vocabulary import BY_KEY, CATEGORICAL, PARAMETERS

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
GRACE_MS = 5 * 60_000
CATCH_UP_H = 48
CHECK_S = 30.0
MAX_SAMPLES = 100_000  # per parameter, bed and hour (1 Hz is 3,600)
SUMMARISED = tuple(p.key for p in PARAMETERS if p.key not in CATEGORICAL)

SCHEMA = """
CREATE TABLE IF NOT EXISTS hourly_done (encounter_id TEXT NOT NULL, hour INTEGER NOT NULL, PRIMARY KEY (encounter_id, hour)) WITHOUT ROWID;
"""

STAYS_SQL = """
SELECT b.encounter_id, e.patient_id, b.bed, b.start, b."end" FROM encounter_beds b JOIN encounters e USING (encounter_id)
WHERE e.status != 'cancelled' AND b.start < ? AND coalesce(b."end", ?) > ?
AND NOT EXISTS (SELECT 1 FROM hourly_done d WHERE d.encounter_id = b.encounter_id AND d.hour = ?)
ORDER BY b.encounter_id, b.start
"""
_DONE_SQL = insert_new("hourly_done", "encounter_id, hour")


class Trends(Protocol):
    async def __call__(self, bed: str, params: list[str], since: int, until: int, limit: int) -> dict[str, list[TrendPoint]]: ...


def summarise(points: list[TrendPoint]) -> tuple[float, int, int, int] | None:
    """(median, n, first t, last t) of the valid points, or None when there are none."""
    valid = [(p.t, p.value) for p in points if p.flags == 0 and p.value is not None]
    if not valid:
        return None
    values = np.array([v for _t, v in valid], dtype=float)
    return float(np.median(values)), len(valid), min(t for t, _v in valid), max(t for t, _v in valid)


class HourlySummaries:
    def __init__(self, db: GroupCommitDatabase, trends: Trends, clock: Callable[[], int]) -> None:
        self.db = db
        self.trends = trends
        self.clock = clock
        self.written = 0

    async def run(self) -> None:
        """Summarise every due hour, then check again every ``CHECK_S``; a failing store is retried next time."""
        while True:
            try:
                await self.catch_up()
            except StoreError as exc:
                log.error("hourly summaries wait for the store: %s", exc)
            await asyncio.sleep(CHECK_S)

    async def catch_up(self) -> int:
        """Summarise every hour that is due and not done (at most ``CATCH_UP_H`` back); returns the events written."""
        now = self.clock()
        last_due = (now - GRACE_MS) // HOUR_MS * HOUR_MS - HOUR_MS  # the latest hour that ended GRACE_MS ago
        written = 0
        for hour in range(last_due - (CATCH_UP_H - 1) * HOUR_MS, last_due + HOUR_MS, HOUR_MS):
            written += await self.summarise_hour(hour)
        return written

    async def summarise_hour(self, hour: int) -> int:
        end = hour + HOUR_MS
        rows = await self.db.read_with(lambda c: c.execute(STAYS_SQL, (end, end, hour, hour)).fetchall())
        by_encounter: dict[str, list[tuple[str, str, int, int]]] = {}
        for eid, pid, bed, start, stay_end in rows:
            by_encounter.setdefault(eid, []).append((pid, bed, max(start, hour), min(stay_end if stay_end is not None else end, end)))
        written = 0
        for eid, stays in by_encounter.items():
            values = await self._values(stays)
            event = None
            if values:
                event = VitalsHourly(encounter_id=eid, patient_id=stays[0][0], bed=stays[-1][1], hour=hour, values=values)
            now = self.clock()
            await self.db.call(lambda c, eid=eid, event=event, now=now: self._record(c, eid, hour, event, now))
            written += event is not None
        self.written += written
        return written

    async def _values(self, stays: list[tuple[str, str, int, int]]) -> list[HourlyValue]:
        out = []
        points: dict[str, list[TrendPoint]] = {param: [] for param in SUMMARISED}
        for _pid, bed, since, until in stays:  # one read per stay: the store parses each bed-second once
            for param, got in (await self.trends(bed, list(SUMMARISED), since, until - 1, MAX_SAMPLES)).items():
                points[param] += got
        for param in SUMMARISED:
            got = summarise(points[param])
            if got is not None:
                median, n, first, last = got
                out.append(HourlyValue(param=param, median=round(median, 2), unit=BY_KEY[param].ucum, n=n, first=first, last=last))
        return out

    @staticmethod
    def _record(conn: Conn, encounter_id: str, hour: int, event: VitalsHourly | None, now: int) -> None:
        """The hour is done for this encounter (with its event, when there was anything to summarise)."""
        if conn.execute(_DONE_SQL, (encounter_id, hour)).rowcount and event is not None:
            outbox.append(conn, event, now)
