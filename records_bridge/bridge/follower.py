"""The bridge's loop: for each sink, follow the hub's outbox from its cursor and deliver every event, in order.

Each sink (the EHR now; the locker, OPD queue and facility registry later) has
its own cursor and task, so one service's outage never holds up another. An
event is retried, with backoff, until its sink takes it (``Retry``) or refuses
it for good (``Poison``: parked with the reason, counted, passed); only then
does the sink's cursor move, durably. Nothing behind a failing event goes
first, so a service always sees a patient's admission before her discharge.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from records_bridge.bridge.cursor import CursorStore
from records_bridge.bridge.hub_client import HubClient, Unreadable
from records_bridge.bridge.metrics import BridgeMetrics
from records_bridge.bridge.outcomes import Poison, Retry
from wire.backoff import Backoff
from wire.clock import wall_ms
from wire.outbox_events import Event

log = logging.getLogger(__name__)


class Sink(Protocol):
    name: str

    async def handle(self, event: Event) -> None:
        """Deliver one event; raise ``Retry`` or ``Poison``."""


class Follower:
    def __init__(self, hub: HubClient, sinks: Sequence[Sink], cursors: CursorStore, metrics: BridgeMetrics,
                 *, backoff: tuple[float, float] = (0.5, 30.0), wait_s: float = 20.0, clock: Callable[[], int] = wall_ms) -> None:  # fmt: skip
        self.hub = hub
        self.sinks = list(sinks)
        self.cursors = cursors
        self.metrics = metrics
        self.backoff = backoff
        self.wait_s = wait_s
        self.clock = clock

    async def run(self) -> None:
        """Follow with every sink until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for sink in self.sinks:
                tg.create_task(self._follow(sink), name=f"bridge-{sink.name}")

    async def _follow(self, sink: Sink) -> None:
        after = self.cursors.position(sink.name)
        self.metrics.position.labels(sink.name).set(after)
        await self._until_ready(sink)
        wait = Backoff(*self.backoff)
        while True:
            try:
                events, last = await self.hub.events(after, wait_s=self.wait_s)
                if last < after:  # the hub's outbox was replaced or restored from a backup: its new events would be missed
                    raise Retry(f"the hub's outbox ends at event {last}, before this sink's cursor {after}: an operator must "
                                "decide (restore the hub's state, or start the bridge with a fresh state file)")  # fmt: skip
            except Retry as exc:
                self.metrics.retries.labels(sink.name).inc()
                self.metrics.failing.labels(sink.name).set(1)
                log.warning("%s: cannot read the hub's outbox (%s)", sink.name, exc)
                await asyncio.sleep(wait.next())
                continue
            wait.reset()
            self.metrics.failing.labels(sink.name).set(0)
            self.metrics.lag.labels(sink.name).set(max(0, last - after))
            for event in events:
                await self._deliver(sink, event)
                after = max(after, event.id)
                self.metrics.position.labels(sink.name).set(after)
                self.metrics.lag.labels(sink.name).set(max(0, last - after))

    async def _until_ready(self, sink: Sink) -> None:
        """Wait until the sink says its target is the service it should be (a wrong URL parks nothing: it waits)."""
        ready = getattr(sink, "ready", None)
        if ready is None:
            return
        wait = Backoff(*self.backoff)
        while True:
            try:
                await ready()
                self.metrics.failing.labels(sink.name).set(0)
                return
            except Retry as exc:
                self.metrics.retries.labels(sink.name).inc()
                self.metrics.failing.labels(sink.name).set(1)
                log.warning("%s: not ready (%s)", sink.name, exc)
                await asyncio.sleep(wait.next())

    async def _deliver(self, sink: Sink, event: Event | Unreadable) -> None:
        wait = Backoff(*self.backoff)
        while True:
            try:
                if isinstance(event, Unreadable):
                    raise Poison(event.reason)
                await sink.handle(event)
            except Retry as exc:
                self.metrics.retries.labels(sink.name).inc()
                self.metrics.failing.labels(sink.name).set(1)
                log.warning("%s: event %d waits (%s)", sink.name, event.id, exc)
                await asyncio.sleep(wait.next())
                continue
            except Poison as exc:
                raw = event.raw if isinstance(event, Unreadable) else event.model_dump(mode="json")
                self.cursors.park(sink.name, event.id, self.clock(), str(exc), raw)
                self.metrics.parked.labels(sink.name).inc()
                self.metrics.failing.labels(sink.name).set(0)
                log.error("%s: event %d parked: %s", sink.name, event.id, exc)
                return
            self.cursors.advance(sink.name, event.id)
            self.metrics.delivered.labels(sink.name, event.data.type).inc()
            self.metrics.failing.labels(sink.name).set(0)
            return
