"""The edge agent's side of the edge protocol, without I/O: numbering, floor, live-first sending, acknowledgements.

``EdgeSession`` owns every piece of the agent's protocol state and nothing
else: the epoch, the next sequence number, which numbered frames the spool
still holds (and so the floor), the live queue, the backlog cursor and its
ack-clocked window, the pacing of the backlog, the pace the hub asked for,
when a status report is due, the hello/welcome exchange and the reconnect
backoff. It reads no socket,
touches no disk and never sleeps; the asyncio shell (``edge_agent.uplink``)
feeds it what happened and does what it says, in the manner of the
sans-I/O protocols of ``websockets`` and ``h11``:

* spool side: ``spooled`` (frames written durably, under the numbers
  ``next_seq`` onwards, and any the size policy dropped), ``dropped``;
* connection side: ``connect`` (returns the hello to send), ``receive_data``
  (bytes from the hub; returns events: ``DeleteFrames`` for the spool,
  ``Welcomed``, ``HubError``; a ``Pace`` is kept here), ``connection_lost``,
  ``reconnect_delay``;
* sending: ``next_send(now)`` says what goes out next (``LiveFrame``,
  ``BacklogFrame`` to be read from the spool, or ``StatusDue``, answered with
  ``status_message``), ``timeout(now)`` how long to wait before asking again
  when nothing new happens.

Invariants (see README "Edge protocol" and ``edge_agent.spool``):

* a frame gets its number only once it is spooled, so the floor (the lowest
  frame the spool holds, minus one, or ``next_seq - 1`` when it holds none)
  never covers a frame still waiting to be written or to be acknowledged,
  and it never moves backwards;
* a frame is deleted (``DeleteFrames``) exactly once, only when the hub has
  acknowledged it, that is stored it durably or refused it for good;
* live frames go before the backlog; the backlog goes at most
  ``backlog_rate`` frames a second and ``BACKLOG_WINDOW`` unacknowledged
  frames at a time, so it never queues in the socket ahead of live data;
* no frame is sent twice on one connection.

Pacing (the hub's brake said in the protocol): the hello says ``pace``, so a
braked hub sends ``Pace(frames_per_s)`` instead of only reading the socket
more slowly (which would leave frames, and the keepalive pings behind them,
in the TCP buffers). While paced, numbered frames (live and backlog) go out
at most at that rate (a token bucket of one frame); at each turn the *newest*
waiting numerics frame goes (else the newest waveform chunk), so the console
sees vital signs as fresh as the pace allows, and the others waiting with it are *held*: they stay in the
spool and go later with the backlog, oldest first, ack-clocked and paced like
it (``BacklogFrame``). Status reports are not paced. ``Pace(None)`` lifts the
pace; a new connection starts unpaced. Counted: ``paces_received``,
``frames_sent_paced``, ``frames_held``.

Time is passed in as seconds on any monotonic clock.
"""

from __future__ import annotations

import enum
import logging
import math
import random
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from wire.backoff import Backoff
from wire.codec import WireError, decode_hub, encode_edge, is_wave_chunk
from wire.messages import Ack, ErrorReport, Hello, Pace, Status, Welcome
from wire.seq_ranges import Run, SeqRanges
from wire.token_bucket import TokenBucket

log = logging.getLogger(__name__)

BACKLOG_WINDOW = 16  # backlog frames sent but not yet acknowledged: the backlog is ack-clocked, so it never
# fills the socket's buffers ahead of live frames (which would delay them however they are ordered here)
BACKLOG_TICK_S = 0.1  # the backlog's budget (backlog_rate / 10 frames) is renewed every tick
MAX_LIVE_QUEUE = 10_000  # frames waiting to go out live; beyond it they wait in the spool until the next connection


class EdgeState(enum.Enum):
    IDLE = "idle"  # no connection
    HELLO_SENT = "hello sent"  # waiting for the welcome
    OPEN = "open"  # welcomed: frames flow


# --- what the session tells its shell ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Welcomed:
    """The hub welcomed the agent: it holds every frame up to ``last_seq``; ``backlog`` frames wait in the spool."""

    last_seq: int
    backlog: int


@dataclass(frozen=True, slots=True)
class DeleteFrames:
    """The hub acknowledged these frames (inclusive runs, each frame in the spool, none ever named before): delete them."""

    runs: tuple[Run, ...]

    @property
    def count(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.runs)


@dataclass(frozen=True, slots=True)
class HubError:
    """The hub reported an error (the connection stays open)."""

    report: ErrorReport


EdgeEvent = Welcomed | DeleteFrames | HubError


@dataclass(frozen=True, slots=True)
class LiveFrame:
    """Send ``data`` now: a frame spooled while connected."""

    seq: int
    data: bytes


@dataclass(frozen=True, slots=True)
class BacklogFrame:
    """Send spooled frame ``seq`` now, read from the spool."""

    seq: int


@dataclass(frozen=True, slots=True)
class StatusDue:
    """Send a status report now: ``EdgeSession.status_message`` makes it."""


Outgoing = LiveFrame | BacklogFrame | StatusDue


class EdgeSession:
    def __init__(
        self,
        *,
        agent: str,
        ward: str,
        beds: Sequence[str],
        epoch: int,
        next_seq: int = 1,
        spooled: Iterable[Run] = (),
        backlog_rate: int = 200,
        status_s: float = 5.0,
        backoff: tuple[float, float] = (0.25, 15.0),
        rng: random.Random | None = None,
        counters: Counter[str] | None = None,
    ) -> None:
        """``epoch``, ``next_seq`` and ``spooled`` (the runs of sequence numbers the spool holds) come from the spool."""
        self._hello = Hello(agent=agent, epoch=epoch, ward=ward, beds=tuple(beds), pace=True)
        self._spooled = SeqRanges(spooled)
        last = self._spooled.last()
        if next_seq < 1 or (last is not None and last >= next_seq):
            raise ValueError(f"next_seq {next_seq} must be at least 1 and above every spooled frame (highest {last})")
        self.next_seq = next_seq
        self.counters: Counter[str] = counters if counters is not None else Counter()
        self.state = EdgeState.IDLE
        self.acked = 0  # the highest cumulative acknowledgement received
        self._per_tick = max(1, int(backlog_rate * BACKLOG_TICK_S))
        self._status_s = status_s
        self._backoff = Backoff(*backoff, rng)
        self._reset_connection()

    def _reset_connection(self) -> None:
        self._live: deque[tuple[int, bytes]] = deque()  # spooled while open, to send now
        self._live_from = self.next_seq  # frames from here on are live on this connection, those below are backlog
        self._backlog_after = 0  # backlog cursor: the highest backlog frame sent on this connection
        self._backlog_unacked: set[int] = set()  # backlog frames sent on this connection, not yet acknowledged
        self._held = SeqRanges()  # live frames held back by the pace, unsent on this connection: they go as backlog
        self._pace: TokenBucket | None = None  # the hub's pace (None: unpaced)
        self._tick_start = -math.inf
        self._tick_sent = 0
        self._status_changed = True  # a new connection is told the whole device picture at once
        self._status_due_at = -math.inf

    # --- state -------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self._hello.epoch

    @property
    def floor(self) -> int:
        """Every frame up to here was acknowledged or dropped: none of them will be sent again."""
        first = self._spooled.first()
        return first - 1 if first is not None else self.next_seq - 1

    @property
    def hello(self) -> Hello:
        return replace(self._hello, floor=self.floor)

    @property
    def pace(self) -> float | None:
        """Frames a second the hub asked for on this connection (None: unpaced)."""
        return self._pace.rate if self._pace is not None else None

    @property
    def connected(self) -> bool:
        return self.state is EdgeState.OPEN

    @property
    def spooled_count(self) -> int:
        return len(self._spooled)

    def spooled_runs(self) -> list[Run]:
        return self._spooled.runs()

    # --- spool side --------------------------------------------------------------

    def spooled(self, frames: Sequence[tuple[int, bytes]], dropped: Iterable[int] = ()) -> None:
        """``frames`` (seq, encoded frame) are durably in the spool, numbered ``next_seq`` onwards without a gap;
        ``dropped``: frames the spool's size policy let go in the same step (these or older ones)."""
        if frames:
            first, last = frames[0][0], frames[-1][0]
            if first != self.next_seq or [s for s, _d in frames] != list(range(first, last + 1)):
                raise ValueError(f"spooled frames must be numbered from {self.next_seq} on without a gap")
            self._spooled.append(first, last)
            self.next_seq = last + 1
        self.dropped(dropped)
        if self.state is EdgeState.OPEN:
            for seq, data in frames:
                if len(self._live) >= MAX_LIVE_QUEUE:
                    break  # the rest waits in the spool and goes out as backlog on the next connection
                if seq in self._spooled:
                    self._live.append((seq, data))

    def dropped(self, seqs: Iterable[int]) -> None:
        """These frames left the spool unacknowledged (its size limit): they will not be sent."""
        for seq in seqs:
            if self._spooled.discard(seq):
                self._backlog_unacked.discard(seq)
                self._held.discard(seq)

    # --- connection side ---------------------------------------------------------

    def connect(self) -> bytes:
        """A connection to the hub is open: returns the hello to send first."""
        if self.state is not EdgeState.IDLE:
            raise RuntimeError(f"connect() while {self.state.value}: call connection_lost() first")
        self.state = EdgeState.HELLO_SENT
        return encode_edge(self.hello)

    def receive_data(self, data: bytes | str) -> list[EdgeEvent]:
        """One message from the hub. Raises ``WireError`` for one that cannot be decoded or is out of place."""
        msg = decode_hub(data)
        if isinstance(msg, Welcome):
            if self.state is not EdgeState.HELLO_SENT:
                raise WireError("protocol", f"welcome while {self.state.value}")
            events: list[EdgeEvent] = list(self._acknowledge(msg.last_seq, ()))
            self._reset_connection()
            self._backlog_after = msg.last_seq
            self.state = EdgeState.OPEN
            self._backoff.reset()  # a session came up: backoff starts again (a hub refusing after the open does not reset it)
            self.counters["connects"] += 1
            events.append(Welcomed(msg.last_seq, len(self._spooled)))
            return events
        if isinstance(msg, ErrorReport):
            self.counters[f"hub_error_{msg.code}"] += 1
        if self.state is EdgeState.HELLO_SENT:
            what = f"error {msg.code}: {msg.detail}" if isinstance(msg, ErrorReport) else type(msg).__name__
            raise WireError("protocol", f"expected welcome, got {what}")
        if isinstance(msg, Ack):
            return self._acknowledge(msg.seq, msg.also)
        if isinstance(msg, Pace):
            self.counters["paces_received"] += 1
            if msg.frames_per_s is None:
                self._pace = None
            elif self._pace is None:
                self._pace = TokenBucket(msg.frames_per_s, 1.0, -math.inf)
            else:
                self._pace.rate = msg.frames_per_s
            return []
        return [HubError(msg)]

    def _acknowledge(self, upto: int, also: tuple[int, ...]) -> list[EdgeEvent]:
        top = self.next_seq - 1
        if upto > top or any(s > top for s in also):  # frames never numbered: the hub's memory is not ours
            self.counters["acks_beyond_sequence"] += 1
            log.error("the hub acknowledges frames up to %d, but only %d were ever numbered in epoch %d",
                      max((upto, *also)), top, self.epoch)  # fmt: skip
            upto = min(upto, top)
        self.acked = max(self.acked, upto)
        runs = self._spooled.remove_upto(upto)
        for seq in also:
            if seq > upto and self._spooled.discard(seq):
                runs.append((seq, seq))
        if not runs:
            return []
        if self._backlog_unacked:
            self._backlog_unacked = {s for s in self._backlog_unacked if s in self._spooled}
        if self._held:  # no longer in the spool: not to be sent
            self._held.remove_upto(upto)
            for seq in also:
                self._held.discard(seq)
        event = DeleteFrames(tuple(runs))
        self.counters["frames_acked"] += event.count
        return [event]

    def connection_lost(self) -> None:
        """The connection is gone (or never came up): unsent live frames become backlog for the next one."""
        self.state = EdgeState.IDLE
        self._reset_connection()

    def reconnect_delay(self) -> float:
        """Seconds to wait before the next attempt: exponential backoff with full jitter (reset by a welcome)."""
        return self._backoff.next()

    def status_changed(self) -> None:
        """The device picture changed: report it at once."""
        self._status_changed = True

    # --- sending -----------------------------------------------------------------

    def next_send(self, now: float) -> Outgoing | None:
        """What to send now: live frames first, then a status report when due, then the backlog (held frames
        included), oldest first, ack-clocked and paced; while the hub paces, the newest live frame first and numbered
        frames at most at its pace."""
        if self.state is not EdgeState.OPEN:
            return None
        paced = self._pace is not None and self._pace.ready_in(1, now) > 0  # no numbered frame may go now
        if not paced:
            live = self._next_live()
            if live is not None:
                return self._sent(live, now)
        if self._status_changed or now >= self._status_due_at:
            self._status_changed = False
            self._status_due_at = now + self._status_s
            return StatusDue()
        if paced or len(self._backlog_unacked) >= BACKLOG_WINDOW:
            return None
        seq = self._next_backlog()
        if seq is None:
            return None
        if now >= self._tick_start + BACKLOG_TICK_S:
            self._tick_start, self._tick_sent = now, 0
        if self._tick_sent >= self._per_tick:
            return None
        self._tick_sent += 1
        if seq in self._held:
            self._held.discard(seq)
        else:
            self._backlog_after = seq
        self._backlog_unacked.add(seq)
        self.counters["frames_sent_backlog"] += 1
        return self._sent(BacklogFrame(seq), now)

    def _next_live(self) -> LiveFrame | None:
        """The live frame to send: the first waiting; while paced, the newest numerics frame (the vital signs of
        the beds it covers: fresher on the console than any waveform), else the newest chunk, the others held."""
        if self._pace is None:
            while self._live:
                seq, data = self._live.popleft()
                if seq in self._spooled:  # else dropped by the size policy meanwhile
                    self.counters["frames_sent_live"] += 1
                    return LiveFrame(seq, data)
            return None
        waiting = [(seq, data) for seq, data in self._live if seq in self._spooled]
        self._live.clear()
        if not waiting:
            return None
        pick = next((i for i in range(len(waiting) - 1, -1, -1) if not is_wave_chunk(waiting[i][1])), len(waiting) - 1)
        for i, (seq, _data) in enumerate(waiting):  # ascending, and above every frame held before
            if i != pick:
                self._held.append(seq, seq)
                self.counters["frames_held"] += 1
        seq, data = waiting[pick]
        self.counters["frames_sent_live"] += 1
        return LiveFrame(seq, data)

    def _sent(self, item: LiveFrame | BacklogFrame, now: float) -> LiveFrame | BacklogFrame:
        self.counters["frames_sent"] += 1
        if self._pace is not None:
            self._pace.take(1, now)
            self.counters["frames_sent_paced"] += 1
        return item

    def _next_backlog(self) -> int | None:
        """The oldest frame not yet sent on this connection and not live: the backlog's next, or a held one."""
        seq = self._spooled.next_after(self._backlog_after)
        backlog = seq if seq is not None and seq < self._live_from else None
        held = self._held.first()
        return held if held is not None and (backlog is None or held < backlog) else backlog

    def timeout(self, now: float) -> float | None:
        """Seconds until ``next_send`` may have something without new input (None: only new input will)."""
        if self.state is not EdgeState.OPEN:
            return None
        if self._status_changed:
            return 0.0
        due = self._status_due_at
        numbered = now if self._pace is None else now + self._pace.ready_in(1, now)  # when a numbered frame may go
        if self._live:
            due = min(due, numbered)
        elif len(self._backlog_unacked) < BACKLOG_WINDOW and self._next_backlog() is not None:
            due = min(due, max(numbered, self._tick_start + BACKLOG_TICK_S if self._tick_sent >= self._per_tick else now))
        return max(0.0, due - now)

    def status_message(self, devices: Sequence[dict], spool_report: dict[str, int]) -> bytes:
        """The status report to send after ``StatusDue``: the device picture and the spool's report, with the floor."""
        return encode_edge(Status(devices=tuple(devices), spool=self.report(spool_report)))

    def report(self, spool_report: dict[str, int]) -> dict[str, int]:
        """The spool's report (frames, bytes, drops, oldest) with the floor, as status reports carry it."""
        return spool_report | {"floor": self.floor}
