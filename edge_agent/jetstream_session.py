"""The JetStream uplink's decisions, without I/O: what to publish next, when to hold back, what the spool may forget.

``JetStreamSession`` is to ``edge_agent.jetstream_uplink`` what
``wire.edge_session.EdgeSession`` is to the WebSocket uplink. It keeps the
account of the frames the spool holds that the stream has not acknowledged
(and so the floor), which of them are being published, and the backoff; the
shell publishes what ``next_publish`` returns, reports each outcome with
``published`` or ``failed``, and deletes from the spool what
``take_deletions`` returns. It reads no socket, touches no disk and never
sleeps; time is passed in as seconds on any monotonic clock.

Rules:

* a frame is deleted (``DeleteFrames``) only after the stream acknowledged it,
  a duplicate acknowledgement included (the stream already held that
  ``Nats-Msg-Id``), and exactly once;
* at most ``max_in_flight`` publishes await their acknowledgement, and after a
  failure (or on a new connection) only one, until one succeeds: a stream
  that is down is probed, not flooded;
* a failed publish (timeout, no stream, refused) leaves its frame in the
  spool and pauses new publishes for the backoff's next delay (exponential,
  full jitter, ``wire.backoff``); failures of publishes that were already in
  flight when the pause began do not lengthen it;
* frames spooled since the connection came up (live) go before the ones
  spooled before it (backlog), oldest first within each; a frame that failed
  goes again before either;
* the floor (every frame up to it acknowledged or dropped) is the lowest
  unacknowledged frame minus one, or ``next_seq - 1``: each publish carries it
  (``Teleicu-Floor``), computed when the publish is handed out.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from wire.backoff import Backoff
from wire.edge_session import DeleteFrames
from wire.jetstream_contract import FrameKey
from wire.seq_ranges import Run, SeqRanges


@dataclass(frozen=True, slots=True)
class Publish:
    """Publish spooled frame ``key.seq`` now, with ``frame_headers(key)``."""

    key: FrameKey

    @property
    def seq(self) -> int:
        return self.key.seq


class JetStreamSession:
    def __init__(
        self,
        *,
        agent: str,
        ward: str,
        epoch: int,
        next_seq: int = 1,
        spooled: Iterable[Run] = (),
        max_in_flight: int = 64,
        backoff: tuple[float, float] = (0.25, 15.0),
        rng: random.Random | None = None,
        counters: Counter[str] | None = None,
    ) -> None:
        """``epoch``, ``next_seq`` and ``spooled`` (the runs of sequence numbers the spool holds) come from the spool."""
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.agent, self.ward, self.epoch = agent, ward, epoch
        self._unacked = SeqRanges(spooled)
        last = self._unacked.last()
        if next_seq < 1 or (last is not None and last >= next_seq):
            raise ValueError(f"next_seq {next_seq} must be at least 1 and above every spooled frame (highest {last})")
        self.next_seq = next_seq
        self.max_in_flight = max_in_flight
        self.counters: Counter[str] = counters if counters is not None else Counter()
        self._backoff = Backoff(*backoff, rng)
        self._to_delete: list[int] = []
        self.open = False
        self._reset()

    def _reset(self) -> None:
        self._in_flight: set[int] = set()
        self._retry: list[int] = []  # a heap of frames to publish again, lowest first
        self._live_from = self.next_seq  # frames from here on were spooled on this connection
        self._live_after = self.next_seq - 1  # cursor: the highest live frame handed out
        self._backlog_after = 0  # cursor: the highest backlog frame handed out
        self._probing = True  # one publish at a time until one succeeds
        self._paused_until = float("-inf")

    # --- state -------------------------------------------------------------------

    @property
    def floor(self) -> int:
        """Every frame up to here was acknowledged by the stream or dropped: none of them will be published again."""
        first = self._unacked.first()
        return first - 1 if first is not None else self.next_seq - 1

    @property
    def unacked(self) -> int:
        """Frames spooled and not yet acknowledged by the stream."""
        return len(self._unacked)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def probing(self) -> bool:
        return self._probing

    # --- spool side --------------------------------------------------------------

    def spooled(self, seqs: Sequence[int], dropped: Iterable[int] = ()) -> None:
        """Frames ``seqs`` are durably in the spool, numbered ``next_seq`` onwards without a gap; ``dropped``:
        frames the spool's size policy let go in the same step (these or older ones)."""
        if seqs:
            first, last = seqs[0], seqs[-1]
            if first != self.next_seq or list(seqs) != list(range(first, last + 1)):
                raise ValueError(f"spooled frames must be numbered from {self.next_seq} on without a gap")
            self._unacked.append(first, last)
            self.next_seq = last + 1
        self.dropped(dropped)

    def dropped(self, seqs: Iterable[int]) -> None:
        """These frames left the spool unacknowledged (its size limit, or missing from it): they will not be published."""
        for seq in seqs:
            if self._unacked.discard(seq):
                self.counters["frames_dropped"] += 1

    # --- connection side ---------------------------------------------------------

    def connected(self) -> None:
        """A connection to NATS is up (and the stream is there): publishing may start, one frame at a time."""
        self._reset()
        self.open = True
        self.counters["connects"] += 1

    def connection_lost(self) -> None:
        """The connection is gone: publishes in flight are abandoned (their frames stay spooled and go again)."""
        self.open = False
        self._reset()

    def reconnect_delay(self) -> float:
        """Seconds to wait before the next connection attempt (reset by an acknowledgement)."""
        return self._backoff.next()

    # --- publishing --------------------------------------------------------------

    def next_publish(self, now: float) -> Publish | None:
        """The next frame to publish, or None: not connected, paused after a failure, window full, nothing waiting."""
        if not self.open or now < self._paused_until:
            return None
        if len(self._in_flight) >= (1 if self._probing else self.max_in_flight):
            return None
        seq = self._next()
        if seq is None:
            return None
        self._in_flight.add(seq)
        self.counters["frames_published"] += 1
        return Publish(FrameKey(self.ward, self.agent, self.epoch, seq, self.floor))

    def _next(self) -> int | None:
        while self._retry:
            seq = heapq.heappop(self._retry)
            if seq in self._unacked and seq not in self._in_flight:
                return seq
        seq = self._unacked.next_after(self._live_after)
        if seq is not None:
            self._live_after = seq
            return seq
        seq = self._unacked.next_after(self._backlog_after)
        if seq is not None and seq < self._live_from:
            self._backlog_after = seq
            return seq
        return None

    def published(self, seq: int, *, duplicate: bool = False) -> None:
        """The stream acknowledged frame ``seq`` (``duplicate``: it held that message id already): the spool may forget it.

        An acknowledgement counts whenever it comes, even for a publish abandoned with its connection."""
        self._in_flight.discard(seq)
        self._probing = False
        self._backoff.reset()
        if self._unacked.discard(seq):
            self._to_delete.append(seq)
            self.counters["frames_acked"] += 1
            if duplicate:
                self.counters["frames_acked_duplicate"] += 1

    def failed(self, seq: int, now: float) -> float:
        """Publishing frame ``seq`` failed (no acknowledgement): it stays spooled and goes again after a pause.
        Returns the seconds until publishing resumes."""
        self.counters["publish_failures"] += 1
        if seq in self._in_flight:
            self._in_flight.discard(seq)
            if seq in self._unacked:
                heapq.heappush(self._retry, seq)
        self._probing = True
        if now >= self._paused_until:
            self._paused_until = now + self._backoff.next()
        return max(0.0, self._paused_until - now)

    def timeout(self, now: float) -> float | None:
        """Seconds until ``next_publish`` may have something without new input (None: only new input will)."""
        if self.open and now < self._paused_until:
            return self._paused_until - now
        return None

    def take_deletions(self) -> DeleteFrames | None:
        """The acknowledged frames not yet deleted from the spool, as runs; each is handed out once."""
        if not self._to_delete:
            return None
        seqs = sorted(self._to_delete)
        self._to_delete = []
        runs: list[Run] = []
        lo = hi = seqs[0]
        for seq in seqs[1:]:
            if seq == hi + 1:
                hi = seq
            else:
                runs.append((lo, hi))
                lo = hi = seq
        runs.append((lo, hi))
        return DeleteFrames(tuple(runs))
