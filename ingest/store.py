"""The time-series store interface the hub writes through, and the batch it writes.

Backends (the embedded SQLite store now, InfluxDB later) implement ``Store``.
``write`` returns only once the batch is durable; the hub acknowledges edge
frames on that, never earlier. A full write queue makes ``write`` wait, which
stops the hub reading from edge sockets: backpressure instead of unbounded memory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from ingest.score_log import ScoreRecord
from wire.messages import Observation, UnmappedObservation, WaveChunk


class StoreError(RuntimeError):
    """The store could not open or write: the frames concerned stay unacknowledged, the caller may retry."""


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


class Store(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Flush everything queued, then close."""

    async def submit(self, batch: Batch) -> asyncio.Future[None]:
        """Queue a batch, waiting while the queue is full; the future completes when it is durable."""

    async def write(self, batch: Batch) -> None:
        """Submit and wait until durable."""

    async def last_seqs(self) -> dict[tuple[str, int], int]:
        """Highest durably stored sequence per (agent, epoch), for deduplication after a restart."""

    async def trend(self, bed: str, param: str, since: int, until: int, limit: int) -> list[TrendPoint]: ...

    async def unmapped_codes(self, device: str | None, limit: int) -> list[dict]:
        """Per (device, system, code) stored: ``count`` (distinct samples) and the ``last`` one (value, unit,
        status, name, bed, t), ordered by device, system, code."""

    error: str | None  # why writes are failing now (None when healthy): raises the store_unreachable alarm

    def record_scores(self, records: list[ScoreRecord]) -> None:
        """Queue score results for the time series; never waits (the tick calls it): records the store cannot take
        now are dropped and counted (``scores_dropped``), since the next minute's record repeats every bed."""

    async def save_alert(self, alert: dict, event: str, by: str | None, at: int, note: str | None = None) -> None:
        """Persist an alert's current state and append the event to its audit trail (InfluxDB: also an
        ``alarm_event`` point)."""

    async def alert_history(self, alert_id: int) -> list[dict]: ...

    async def alerts(self, state: str | None, limit: int) -> list[dict]: ...

    async def audit_between(self, since: int, until: int) -> list[tuple[int, int, str, str]]: ...

    async def save_gap(self, bed: str, start: int, end: int) -> None:
        """Record that no data reached the hub from ``bed`` between ``start`` and ``end`` (hub time, ms)."""

    async def gaps(self, since: int, until: int, bed: str | None = None) -> list[dict]: ...

    async def open_alerts(self) -> list[dict]: ...

    async def save_agent(self, agent: str, ward: str, beds: list[str]) -> None:
        """Remember an edge agent and its beds, so a restarted hub knows whom to expect."""

    async def forget_agent(self, agent: str) -> None:
        """Stop expecting an agent (a gateway taken out of service)."""

    async def known_agents(self) -> list[tuple[str, str, list[str]]]:
        """Every remembered agent: (agent, ward, beds)."""

    async def max_alert_id(self) -> int: ...

    def stats(self) -> dict[str, int]: ...
