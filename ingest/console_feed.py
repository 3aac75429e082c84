"""Fan-out of live messages to console WebSockets, without letting a slow console stall the hub.

Each subscriber has a bounded queue of already-encoded messages. A console
that falls a full queue behind is cut off (it reconnects and gets a fresh
snapshot) rather than making the hub buffer without limit or wait for it.

``encode`` is the one encoder of everything a console is sent (orjson: NumPy
scalars as numbers, a NaN as null, never the invalid JSON ``NaN``); a message
is encoded once and the same text is queued for every console that sees it.

On a JetStream hub worker the feed has an ``outlet`` (``ingest.console_relay``):
the hub's messages go to it instead, one per ward, and it decides what this
worker may speak for and ``deliver``s that, and other workers' messages, here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson


def encode(msg: dict[str, Any]) -> str:
    """A console message as JSON text."""
    return orjson.dumps(msg, option=orjson.OPT_SERIALIZE_NUMPY).decode()


@dataclass(eq=False)
class Subscriber:
    wards: frozenset[str] | None = None  # None: all wards

    def sees(self, ward: str | None) -> bool:
        """Messages of no ward (hub-wide technical alarms) go to every console."""
        return self.wards is None or ward is None or ward in self.wards
    queue: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(maxsize=512))
    overflowed: bool = False


class ConsoleFeed:
    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()
        self.dropped_consoles = 0
        self.outlet: Callable[[dict[str, Any], str | None], None] | None = None  # set by a JetStream worker's relay

    def subscribe(self, wards: frozenset[str] | None = None) -> Subscriber:
        sub = Subscriber(wards=wards)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def publish(self, msg: dict[str, Any], *, ward: str | None = None) -> None:
        """Queue ``msg`` for every console watching ``ward`` (or every console if ``ward`` is None)."""
        if self.outlet is not None:
            self.outlet(msg, ward)
        elif self.subscribers:
            self.deliver(encode(msg), ward)

    def deliver(self, text: str, ward: str | None) -> None:
        """Queue an encoded message for every console watching ``ward`` (every console if None)."""
        for sub in list(self.subscribers):
            if sub.sees(ward):
                self._offer(sub, text)

    def publish_beds(self, now: int, beds: list[dict[str, Any]]) -> None:
        """Push changed beds; each console gets only the beds of the ward it watches."""
        if self.outlet is not None:
            by_ward: dict[str, list[dict[str, Any]]] = {}
            for b in beds:
                by_ward.setdefault(b["ward"], []).append(b)
            for ward, mine in by_ward.items():
                self.outlet({"type": "beds", "now": now, "beds": mine}, ward)
            return
        if not self.subscribers or not beds:
            return
        everything = None
        for sub in list(self.subscribers):
            if sub.wards is None:
                if everything is None:
                    everything = encode({"type": "beds", "now": now, "beds": beds})
                self._offer(sub, everything)
            else:
                mine = [b for b in beds if b["ward"] in sub.wards]
                if mine:
                    self._offer(sub, encode({"type": "beds", "now": now, "beds": mine}))

    def _offer(self, sub: Subscriber, text: str) -> None:
        if sub.overflowed:
            return
        try:
            sub.queue.put_nowait(text)
        except asyncio.QueueFull:
            sub.overflowed = True
            self.dropped_consoles += 1
            # make room for the close marker so the sender task wakes up and disconnects
            while not sub.queue.empty():
                sub.queue.get_nowait()
            sub.queue.put_nowait(None)
