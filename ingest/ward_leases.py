"""Which wards a hub worker owns: the lease decisions, with no I/O and the clock passed in.

Ownership lives in a NATS JetStream key-value bucket whose TTL is the lease's
(``lease_ttl_s``): key = ward, value = the worker's id. JetStream is the
distributed engine that decides; this class only says what to ask it next and
what its answers mean:

* a ward the worker wants and does not hold: **take** it with ``create`` (only
  when the key is absent: nobody else holds it, or their lease expired);
* a held ward: **renew** every ``ttl/3`` with ``update(key, last=revision)``,
  a compare-and-set on the revision the worker last wrote;
* a refused ``create`` means another worker holds the ward: try again after
  ``ttl/3``;
* a refused renewal (the revision moved: the lease expired and someone took
  it) means the ward is **lost** at once;
* a renewal that got no answer (NATS unreachable) keeps being retried, but the
  ward is given up once its lease may have expired on the server: a lease is
  trusted for ``ttl - margin`` after the renewal was *sent* (the server counts
  its TTL from when it stored the write, which is later), so a worker stops
  consuming before any other worker can take the ward;
* a held ward the worker no longer wants (or every ward, when it stops) is
  **released**: ``delete(key, last=revision)``, so another worker takes it
  without waiting for the TTL.

**Balancing** (``jetstream.balance``, off by default): given the other live
workers and the wards each may own (their presence in the bucket), each ward has
one *preferred* worker, by rendezvous hashing of (ward, worker) over the
workers that may own it (``preferred``): every worker computes the same answer,
and a worker joining or leaving moves only the wards it gains or held. A worker
takes a free ward it prefers at once, and one another worker prefers only after
waiting a round (``ttl/3``), so a preferred worker that is alive takes it first
and a dead one's wards are still taken within a round more. It releases a ward
another live worker prefers; one it released and then took back (nobody took
it in two rounds) it keeps for ``HOLD_TTLS`` TTLs before yielding it again.

The asyncio layer (``ingest.jetstream_worker``) performs the steps and reports
each outcome back; ``owned`` is what it may consume.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

MARGIN = 1 / 6  # of the TTL: a lease is trusted for ttl * (1 - MARGIN) after the renewal was sent
HOLD_TTLS = 10  # a ward yielded to its preferred worker and taken back (nobody took it) is kept this many TTLs
Peers = Mapping[str, frozenset[str] | None]  # another live worker -> the wards it may own (None: every ward)

Op = Literal["take", "renew", "release"]


@dataclass(frozen=True, slots=True)
class Step:
    """One request to make to the bucket: ``take`` (create), ``renew`` (update with ``last``), ``release`` (delete with ``last``)."""

    op: Op
    ward: str
    last: int = 0


def preferred(ward: str, workers: Iterable[str]) -> str:
    """The worker a ward goes to: the highest hash of (ward, worker), the same on every worker (rendezvous hashing)."""
    return max(workers, key=lambda w: (hashlib.blake2b(f"{ward}\0{w}".encode(), digest_size=8).digest(), w))


@dataclass(slots=True)
class _Held:
    revision: int
    sent: float  # when the write that confirmed the lease was sent (clock seconds)


class WardLeases:
    def __init__(self, worker: str, ttl_s: float) -> None:
        self.worker = worker
        self.ttl_s = ttl_s
        self.every_s = ttl_s / 3
        self.trust_s = ttl_s * (1 - MARGIN)
        self._held: dict[str, _Held] = {}
        self._next_take: dict[str, float] = {}  # ward -> earliest time to try to take it again
        self._waited: set[str] = set()  # free wards another worker prefers, left to it for one round already
        self._yielded: set[str] = set()  # released to the worker that prefers them, not yet seen taken
        self._hold_until: dict[str, float] = {}  # wards taken back after a yield nobody took: not yielded again before

    # --- what to do ------------------------------------------------------------------

    def plan(self, now: float, wanted: Iterable[str], peers: Peers | None = None) -> list[Step]:
        """The requests due now, given the wards this worker may own and, when balancing, the other live workers
        (``Peers``). Call ``expire`` first."""
        want = set(wanted)
        prefers = (lambda w: self.worker) if peers is None else (lambda w: self.prefers(w, peers))
        yield_ = {w for w in self._held if w in want and prefers(w) != self.worker and now >= self._hold_until.get(w, 0.0)}
        steps = [Step("release", w, h.revision) for w, h in sorted(self._held.items()) if w not in want or w in yield_]
        self._yielded |= yield_
        steps += [Step("renew", w, h.revision) for w, h in sorted(self._held.items())
                  if w in want and w not in yield_ and now - h.sent >= self.every_s]  # fmt: skip
        for w in sorted(want - self._held.keys()):
            if now < self._next_take.get(w, now):
                continue
            if prefers(w) != self.worker and w not in self._waited:  # its preferred worker first, for a round
                self._waited.add(w)
                self._next_take[w] = now + self.every_s
                continue
            steps.append(Step("take", w))
        return steps

    def prefers(self, ward: str, peers: Peers) -> str:
        """The worker that ward goes to, among this one and the live peers that may own it."""
        return preferred(ward, [self.worker, *(p for p, wards in peers.items() if wards is None or ward in wards)])

    def release_all(self) -> list[Step]:
        """Every held ward to give back (the worker is stopping)."""
        return [Step("release", w, h.revision) for w, h in sorted(self._held.items())]

    def next_due(self, now: float) -> float:
        """When ``plan`` next has something to do for the wards known now (at least ``now``)."""
        times = [h.sent + self.every_s for h in self._held.values()] + list(self._next_take.values())
        return max(now, min(times, default=now + self.every_s))

    # --- what the bucket answered ----------------------------------------------------

    def taken(self, ward: str, revision: int, sent: float) -> None:
        """``create`` succeeded: the ward is ours from ``sent`` (when the request went out)."""
        self._held[ward] = _Held(revision, sent)
        self._next_take.pop(ward, None)
        self._waited.discard(ward)
        if ward in self._yielded:  # yielded, and nobody took it: keep it a while
            self._yielded.discard(ward)
            self._hold_until[ward] = sent + HOLD_TTLS * self.ttl_s

    def busy(self, ward: str, now: float) -> None:
        """``create`` was refused: another worker holds the ward; try again in ``ttl/3``."""
        self._next_take[ward] = now + self.every_s
        self._waited.discard(ward)
        self._yielded.discard(ward)

    def unanswered(self, ward: str, now: float) -> None:
        """A ``create`` got no answer (NATS unreachable): try again in ``ttl/3``. (A renewal that got no answer needs
        no call: it stays due, and ``expire`` gives the ward up when its lease can no longer be trusted.)"""
        if ward not in self._held:
            self._next_take[ward] = now + self.every_s

    def renewed(self, ward: str, revision: int, sent: float) -> None:
        held = self._held.get(ward)
        if held is not None:
            held.revision, held.sent = revision, sent

    def lost(self, ward: str, now: float) -> None:
        """A renewal was refused (the revision moved): another worker owns the ward now. Stop consuming it at once."""
        self._held.pop(ward, None)
        self._next_take[ward] = now + self.every_s

    def released(self, ward: str, now: float) -> None:
        """Given back (or to be treated as given back, when the delete failed: the TTL frees it). A ward yielded to
        the worker that prefers it is left to it for two rounds."""
        self._held.pop(ward, None)
        self._next_take[ward] = now + self.every_s
        if ward in self._yielded:  # its own wait is over by then: taken back at once if still free
            self._next_take[ward] += self.every_s
            self._waited.add(ward)

    def expire(self, now: float) -> list[str]:
        """Wards whose lease can no longer be trusted (no renewal answered for ``ttl * (1 - MARGIN)``): dropped, and
        returned so their consumers stop at once."""
        gone = [w for w, h in self._held.items() if now - h.sent >= self.trust_s]
        for w in gone:
            del self._held[w]
            self._next_take[w] = now
        return sorted(gone)

    # --- views -----------------------------------------------------------------------

    def owned(self, now: float) -> set[str]:
        """The wards this worker may consume now."""
        return {w for w, h in self._held.items() if now - h.sent < self.trust_s}

    def revision(self, ward: str) -> int | None:
        held = self._held.get(ward)
        return None if held is None else held.revision
