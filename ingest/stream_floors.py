"""When an agent's floor, as its JetStream frames carry it, may raise the hub's watermark: no I/O.

Each frame on the stream carries ``Teleicu-Floor``: every frame of that
agent's epoch up to it was acknowledged by the stream, or dropped at the edge,
before this one was published. On the WebSocket the floor may raise the hub's
durable watermark at once (the hub itself acknowledged those frames). Here it
may not: "acknowledged by the stream" is not "stored by the hub". A frame
below the floor can still be in flight, or waiting to be delivered again after
a store failure or a worker's death, and raising the watermark over it would
make the hub acknowledge its redelivery as a duplicate: a lost sample.

So a floor read from the frame at stream sequence ``S`` is held until the
ward's consumer has acknowledged everything up to ``S`` (its *ack floor*, which
JetStream keeps for the durable consumer across workers): every frame below
the agent's floor was published before ``S``, so each was then stored (or
refused for good, or acknowledged as a duplicate of a stored one) by whichever
worker owned the ward. Only then does the floor raise the watermark, which lets
the watermark pass frames the edge dropped instead of waiting for them for ever.

Per (agent, epoch) one floor waits (``candidate``) and the newest seen waits
behind it; ``settled`` hands over those the ack floor has passed.
"""

from __future__ import annotations

Key = tuple[str, int]  # (agent, epoch)


class StreamFloors:
    def __init__(self) -> None:
        self._candidate: dict[Key, tuple[int, int]] = {}  # key -> (stream seq, floor): the floor to apply first
        self._newest: dict[Key, tuple[int, int]] = {}  # key -> the highest floor seen since the candidate

    def seen(self, agent: str, epoch: int, floor: int, stream_seq: int) -> None:
        """A frame of (agent, epoch) at ``stream_seq`` said ``floor``."""
        if floor <= 0:
            return
        key = (agent, epoch)
        cand = self._candidate.get(key)
        if cand is None:
            self._candidate[key] = (stream_seq, floor)
        elif floor > cand[1] and floor > self._newest.get(key, (0, 0))[1]:
            self._newest[key] = (stream_seq, floor)

    def settled(self, ack_floor: int) -> list[tuple[str, int, int]]:
        """(agent, epoch, floor) for each floor whose frame the consumer's ack floor has passed; the newest floor seen
        for the same key becomes the next candidate."""
        out: list[tuple[str, int, int]] = []
        for key, (sseq, floor) in list(self._candidate.items()):
            if sseq > ack_floor:
                continue
            newer = self._newest.pop(key, None)
            if newer is not None and newer[0] <= ack_floor:  # passed too: the higher floor says all
                floor, newer = newer[1], None
            out.append((key[0], key[1], floor))
            if newer is not None:
                self._candidate[key] = newer
            else:
                del self._candidate[key]
        return out

    def __len__(self) -> int:
        return len(self._candidate)
