"""Deduplication of edge frames by (agent, epoch, sequence), with frames allowed out of order.

An agent numbers its frames 1, 2, 3... within one epoch. After an outage it
sends live frames first and its backlog behind them, so the hub sees sequence
numbers out of order. Per (agent, epoch) the tracker keeps a watermark (every
frame up to it is taken) and the set of frames taken above it; the set folds
into the watermark as the gaps fill. ``accepted`` moves when a frame is taken
in, ``durable`` when the store confirms it; ``rewind`` drops back to durable
after a connection is lost, so the agent's re-sent frames are taken again.

The durable watermark is persisted with the data. A set too large to keep
(``MAX_AHEAD``) loses its lowest entries; that can only let a duplicate
through, which the store absorbs (it keys samples by device time).
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

    def copy(self) -> _Marks:
        return _Marks(self.floor, set(self.ahead))


class SeqTracker:
    def __init__(self, durable: dict[Key, int] | None = None) -> None:
        self.durable: dict[Key, _Marks] = {k: _Marks(v) for k, v in (durable or {}).items()}
        self.accepted: dict[Key, _Marks] = {k: m.copy() for k, m in self.durable.items()}

    def is_new(self, agent: str, epoch: int, seq: int) -> bool:
        m = self.accepted.get((agent, epoch))
        return m is None or not m.has(seq)

    def accept(self, agent: str, epoch: int, seq: int) -> None:
        self.accepted.setdefault((agent, epoch), _Marks()).add(seq)

    def stored(self, agent: str, epoch: int, seq: int) -> None:
        self.durable.setdefault((agent, epoch), _Marks()).add(seq)

    def last_durable(self, agent: str, epoch: int) -> int:
        m = self.durable.get((agent, epoch))
        return m.floor if m else 0

    def durable_above(self, agent: str, epoch: int) -> set[int]:
        m = self.durable.get((agent, epoch))
        return m.ahead if m else set()

    def rewind(self, agent: str, epoch: int) -> None:
        key = (agent, epoch)
        m = self.durable.get(key)
        self.accepted[key] = m.copy() if m else _Marks()
