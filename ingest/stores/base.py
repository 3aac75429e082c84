"""The two store interfaces the hub writes through, and what travels through them.

**Sample store** (``SampleStore``): the time series. Vitals, waveform chunks and
unmapped observations arrive in ``Batch``es from edge frames; ``write`` returns
only once a batch is durable, and the hub acknowledges edge frames on that,
never earlier. Each batch carries its agent's durable watermark (``mark``), which
the sample store persists with (embedded SQLite: in the same transaction) or
right after (InfluxDB: into the state store) the data. A full write queue makes
``submit`` wait, which stops the hub reading edge sockets: backpressure instead
of unbounded memory. Score results are derived data, queued without waiting.

**State store** (``StateStore``): everything that is not a time series: alarms
and their audit trail, data gaps, the agents the hub expects, and the durable
watermarks. Always SQLite (embedded: the same file and writer as the samples).

Alarm ids are UUIDv7 strings (``wire.ids``), so two hubs never mint the same id.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ingest.auth.audit_log import AuditEntry
from ingest.score_log import ScoreRecord
from wire.messages import Observation, UnmappedObservation, WaveChunk
from wire.outbox_events import EventData

if TYPE_CHECKING:
    from ingest.stores.group_commit import GroupCommitDatabase


class StoreError(RuntimeError):
    """A store could not open or write: the frames concerned stay unacknowledged, the caller may retry."""


class ConstraintError(StoreError):
    """A change the database refused by its own rules (a unique key, a check): retrying it will not help."""


@dataclass(slots=True)
class Batch:
    """Rows from one edge frame, plus the frame's position in its agent's sequence.

    ``mark`` is the agent's contiguous durable watermark when the batch was
    submitted (every frame up to it is stored). The store persists the highest
    mark it has written; it never persists ``seq`` itself, because frames can
    arrive out of order (live ahead of backlog) and a frame stored ahead of a
    gap must not make the hub forget the gap after a restart.
    """

    agent: str
    epoch: int
    seq: int
    mark: int = 0
    obs: list[Observation] = field(default_factory=list)
    waves: list[WaveChunk] = field(default_factory=list)
    unmapped: list[UnmappedObservation] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TrendPoint:
    t: int
    value: float | None
    flags: int


Marks = dict[tuple[str, int], int]  # (agent, epoch) -> highest durable watermark


class SampleStore(Protocol):
    error: str | None  # why writes are failing now (None when healthy): raises the store_unreachable alarm

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Flush everything queued, then close."""

    async def submit(self, batch: Batch) -> asyncio.Future[None]:
        """Queue a batch, waiting while the queue is full; the future completes when it is durable."""

    async def write(self, batch: Batch) -> None:
        """Submit and wait until durable."""

    def record_scores(self, records: list[ScoreRecord]) -> None:
        """Queue score results for the time series; never waits (the tick calls it): records the store cannot take
        now are dropped and counted (``scores_dropped``), since the next minute's record repeats every bed."""

    def record_alarm_event(self, alert: dict, event: str, by: str | None, at: int) -> None:
        """A time-series copy of an alarm lifecycle event (InfluxDB ``alarm_event``), derived like the scores;
        a store whose state store already holds the audit trail does nothing more."""

    def set_bed_tags(self, bed: str, *, ward: str | None = None, hospital: str | None = None) -> None:
        """Where a bed is, for stores that tag series by it (others ignore it)."""

    async def trend(self, bed: str, param: str, since: int, until: int, limit: int) -> list[TrendPoint]: ...

    async def trends(self, bed: str, params: list[str], since: int, until: int, limit: int) -> dict[str, list[TrendPoint]]:
        """``trend`` of several parameters of one bed (at most ``limit`` points each), in as few reads as the store can."""

    async def unmapped_codes(self, device: str | None, limit: int) -> list[dict]:
        """Per (device, system, code) stored: ``count`` (distinct samples) and the ``last`` one (value, unit,
        status, name, bed, t), ordered by device, system, code."""

    def stats(self) -> dict[str, int]: ...


class StateStore(Protocol):
    db: GroupCommitDatabase  # users, sessions and agent secrets are read and written there too (ingest.auth)

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def last_seqs(self) -> Marks:
        """Highest durably stored sequence per (agent, epoch), for deduplication after a restart."""

    async def save_marks(self, marks: Marks) -> None:
        """Persist durable watermarks (each only ever rises)."""

    async def save_alert(self, alert: dict, event: str, by: str | None, at: int, note: str | None = None,
                         outbox_event: EventData | None = None) -> None:  # fmt: skip
        """Persist an alert's current state and append the event to its audit trail (and its outbox event)."""

    async def save_score_change(self, point: tuple[str, int, int | None, str, int], event: EventData | None) -> None:
        """Record an admitted patient's NEWS2 change (and its band event)."""

    async def last_score_points(self) -> list[tuple[str, int | None, str, int]]:
        """Each open encounter's last recorded NEWS2: (encounter, total, band, partial)."""

    async def open_alerts(self) -> list[dict]: ...

    async def save_bed_setting(self, bed: str, ward: str, name: str, body: dict) -> None:
        """Keep one clinical setting of a bed (``spo2_scale``, ``limit:<param>``), replacing the one it had."""

    async def bed_settings(self, ward: str | None = None) -> list[tuple[str, str, str, dict]]:
        """(bed, ward, name, body) of every bed's settings (of one ward's beds, when given)."""

    async def alerts(self, state: str | None, limit: int, bed: str | None = None) -> list[dict]:
        """Alarms in any state (resolved included), newest first; of one bed only, when given."""

    async def alert_history(self, alert_id: str) -> list[dict]: ...

    async def audit_between(self, since: int, until: int) -> list[tuple[str, int, str, str]]:
        """(alert id, time, event, body JSON) of every audited event in [since, until], in order."""

    async def save_gap(self, bed: str, start: int, end: int) -> None:
        """Record that no data reached the hub from ``bed`` between ``start`` and ``end`` (hub time, ms)."""

    async def gaps(self, since: int, until: int, bed: str | None = None) -> list[dict]: ...

    async def save_agent(self, agent: str, ward: str, beds: list[str]) -> None:
        """Remember an edge agent and its beds, so a restarted hub knows whom to expect."""

    async def forget_agent(self, agent: str) -> None:
        """Stop expecting an agent (a gateway taken out of service)."""

    async def known_agents(self) -> list[tuple[str, str, list[str]]]:
        """Every remembered agent: (agent, ward, beds)."""

    async def append_audit(self, entries: list[AuditEntry]) -> None:
        """Append entries to the hash-chained audit log (``ingest.auth.audit_log``)."""

    async def audit_entries(self, actor: str | None, target: str | None, since: int, until: int, limit: int) -> list[dict]: ...

    async def audit_head(self) -> tuple[int, str]:
        """The audit log's newest entry: ``(seq, hash)``."""


@dataclass
class Stores:
    """The hub's sample store and state store, started and stopped in order (state first up, last down)."""

    samples: SampleStore
    state: StateStore

    async def start(self) -> None:
        await self.state.start()
        try:
            await self.samples.start()
        except BaseException:
            await self.state.stop()
            raise

    async def stop(self) -> None:
        try:
            await self.samples.stop()
        finally:
            await self.state.stop()
