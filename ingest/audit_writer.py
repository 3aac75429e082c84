"""The hub's audit writer: alarm events, data gaps, agent records, audit-log entries, patients' score changes and beds'
settings,
saved in order to the state store (with the outbox events they make, in the same transaction).

The tick and the edge endpoint never wait on the store: they ``persist`` items
into a bounded queue (an overflow is counted and logged, never silent) and one
task writes them in order. A failed write is retried with backoff until it
succeeds, so an alarm raised while the disk is full is audited late, never lost.
On stop, ``flush`` writes what is left, including the item that was in hand
when the writer was cancelled (a duplicate audit line is better than a loss).
``caught_up`` waits until everything queued so far is written: a JetStream
worker giving a ward back waits for it, so the next owner adopts the ward's
alarms as they are, not as they were a moment before.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass

from alerts.lifecycle import AlertEvent
from ingest.auth.audit_log import AuditEntry
from ingest.patients.score_changes import ScoreChange
from ingest.stores.base import SampleStore, StateStore, StoreError
from wire.outbox_events import AlarmEvent

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000
RETRY_S = (0.5, 10.0)  # a failed write is retried after 0.5 s, doubling up to 10 s, until it succeeds


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """An edge agent to remember (or, with ``forget``, to stop expecting) across hub restarts."""

    agent: str
    ward: str = ""
    beds: tuple[str, ...] = ()
    forget: bool = False


@dataclass(frozen=True, slots=True)
class DataGap:
    """No data reached the hub from ``bed`` between ``start`` and ``end`` (hub time, ms)."""

    bed: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class BedSetting:
    """A bed's clinical setting to keep (``ingest.hub``: one that moved with a patient, or went back to the default)."""

    bed: str
    ward: str
    name: str
    body: dict


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """An alarm event, and the outbox event it makes when it concerns an admitted patient (same transaction)."""

    event: AlertEvent
    outbox: AlarmEvent | None = None


Persisted = AlarmRecord | AgentRecord | DataGap | AuditEntry | ScoreChange | BedSetting


class AuditWriter:
    def __init__(self, state: StateStore, samples: SampleStore, counters: Counter[str]) -> None:
        self.state = state
        self.samples = samples  # gets a time-series copy of each alarm event (InfluxDB dashboards)
        self.counters = counters
        self._queue: asyncio.Queue[Persisted] = asyncio.Queue(maxsize=MAX_QUEUED)
        self._in_hand: Persisted | None = None  # taken from the queue, not yet written
        self._accepted = self._written = 0  # items queued, and written, since start (in order: the n-th written is the n-th queued)
        self._progress = asyncio.Event()  # set, and replaced, at each item written

    def persist(self, item: Persisted) -> None:
        """Queue an item for the writer; never waits."""
        try:
            self._queue.put_nowait(item)
            self._accepted += 1
        except asyncio.QueueFull:
            self.counters["alert_log_overflow"] += 1
            log.error("audit queue full: %r not persisted", item)

    @property
    def waiting(self) -> int:
        return self._queue.qsize() + (self._in_hand is not None)

    async def run(self) -> None:
        """Write items in order until cancelled; a failed write is retried until it succeeds."""
        while True:
            self._in_hand = item = await self._queue.get()
            delay, max_delay = RETRY_S
            while True:
                try:
                    await self._saved(item)
                    break
                except StoreError as exc:
                    self.counters["audit_write_retries"] += 1
                    log.error("alarm audit write failed (%s); %d events waiting, retrying in %.1f s", exc, self.waiting, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, max_delay)
            self._in_hand = None

    async def flush(self) -> None:
        """Write what the cancelled writer left: the item in hand, then the queue. Raises ``StoreError``."""
        if self._in_hand is not None:
            await self._saved(self._in_hand)
            self._in_hand = None
        while not self._queue.empty():
            await self._saved(self._queue.get_nowait())

    async def caught_up(self) -> None:
        """Return once every item queued before the call is written (items queued meanwhile are not waited for).
        Waits as long as the store refuses: the caller bounds it."""
        target = self._accepted
        while self._written < target:
            await self._progress.wait()

    async def _saved(self, item: Persisted) -> None:
        await self._save(item)
        self._written += 1
        self._progress.set()
        self._progress = asyncio.Event()

    async def _save(self, item: Persisted) -> None:
        if isinstance(item, AuditEntry):
            await self.state.append_audit([item])
        elif isinstance(item, DataGap):
            await self.state.save_gap(item.bed, item.start, item.end)
        elif isinstance(item, BedSetting):
            await self.state.save_bed_setting(item.bed, item.ward, item.name, item.body)
        elif isinstance(item, AgentRecord):
            if item.forget:
                await self.state.forget_agent(item.agent)
            else:
                await self.state.save_agent(item.agent, item.ward, list(item.beds))
        elif isinstance(item, ScoreChange):
            await self.state.save_score_change(item.point, item.event)
        else:
            ev = item.event
            body = ev.alert.to_json()
            await self.state.save_alert(body, ev.event, ev.by, ev.alert.updated, ev.note, item.outbox)
            self.samples.record_alarm_event(body, ev.event, ev.by, ev.alert.updated)
