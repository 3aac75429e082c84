"""Deduplication of edge frames by (agent, epoch, sequence).

An agent numbers its frames 1, 2, 3... within one run (its epoch) and sends them
in order on one connection, re-sending unacknowledged ones after a reconnect.
So a frame is new exactly when its sequence is above the highest one accepted
for that (agent, epoch). ``accepted`` moves when a frame is taken in;
``durable`` moves when the store confirms it. If a write fails, ``rewind``
drops back to the durable mark so the agent's re-sent frames are taken again.
"""

from __future__ import annotations


class SeqTracker:
    def __init__(self, durable: dict[tuple[str, int], int] | None = None) -> None:
        self.durable: dict[tuple[str, int], int] = dict(durable or {})
        self.accepted: dict[tuple[str, int], int] = dict(self.durable)

    def is_new(self, agent: str, epoch: int, seq: int) -> bool:
        return seq > self.accepted.get((agent, epoch), 0)

    def accept(self, agent: str, epoch: int, seq: int) -> None:
        key = (agent, epoch)
        if seq > self.accepted.get(key, 0):
            self.accepted[key] = seq

    def stored(self, agent: str, epoch: int, seq: int) -> None:
        key = (agent, epoch)
        if seq > self.durable.get(key, 0):
            self.durable[key] = seq

    def last_durable(self, agent: str, epoch: int) -> int:
        return self.durable.get((agent, epoch), 0)

    def rewind(self, agent: str, epoch: int) -> None:
        key = (agent, epoch)
        self.accepted[key] = self.durable.get(key, 0)
