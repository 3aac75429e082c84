"""Deduplication of edge frames by (agent, epoch, sequence), with frames allowed out of order.

An agent numbers its frames 1, 2, 3... within one epoch. After an outage it
sends live frames first and its backlog behind them, so the hub sees sequence
numbers out of order. Per (agent, epoch) the tracker keeps a watermark (every
frame up to it is taken) and the set of frames taken above it; the set folds
into the watermark as the gaps fill. Only durable frames count: a frame
taken in but not yet stored, re-sent on another connection (the first one
stalled behind a slow store and timed out), is taken again rather than
acknowledged as a duplicate before it is safe. Storing it twice is harmless:
the store keys samples by device time.

The durable watermark is persisted with the data. A set too large to keep
(``MAX_AHEAD``) loses its lowest entries; that can only let a duplicate
through, which the store absorbs (it keys samples by device time).

This is the hub's side of the edge protocol's state, shared by all of an
agent's connections: the hub core marks frames stored and raises floors, and
each connection's ``wire.hub_session.HubSession`` reads the watermark it
acknowledges. ``ingest.dedup`` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_AHEAD = 200_000

Key = tuple[str, int]


@dataclass
class _Marks:
    floor: int = 0
    ahead: set[int] = field(default_factory=set)

    def has(self, seq: int) -> bool:
        return seq <= self.floor or seq in self.ahead

    def add(self, seq: int) -> None:
        if seq <= self.floor:
            return
        if seq == self.floor + 1:
            self.floor = seq
            while self.floor + 1 in self.ahead:
                self.floor += 1
                self.ahead.discard(self.floor)
            return
        self.ahead.add(seq)
        if len(self.ahead) > MAX_AHEAD:
            self.ahead.discard(min(self.ahead))


class SeqTracker:
    def __init__(self, durable: dict[Key, int] | None = None) -> None:
        self.durable: dict[Key, _Marks] = {k: _Marks(v) for k, v in (durable or {}).items()}

    def is_new(self, agent: str, epoch: int, seq: int) -> bool:
        m = self.durable.get((agent, epoch))
        return m is None or not m.has(seq)

    def stored(self, agent: str, epoch: int, seq: int) -> None:
        self.durable.setdefault((agent, epoch), _Marks()).add(seq)

    def raise_floor(self, agent: str, epoch: int, seq: int) -> None:
        """The agent says nothing up to ``seq`` will come (again): acknowledged before, or dropped at the edge.

        Without this, a frame the agent dropped, or one a restarted hub no longer knew it had stored
        (the persisted watermark lags by a batch), would hold the watermark back for ever."""
        m = self.durable.setdefault((agent, epoch), _Marks())
        if seq <= m.floor:
            return
        m.floor = seq
        m.ahead = {s for s in m.ahead if s > seq}
        while m.floor + 1 in m.ahead:
            m.floor += 1
            m.ahead.discard(m.floor)

    def last_durable(self, agent: str, epoch: int) -> int:
        m = self.durable.get((agent, epoch))
        return m.floor if m else 0

    def durable_above(self, agent: str, epoch: int) -> set[int]:
        m = self.durable.get((agent, epoch))
        return m.ahead if m else set()
