"""The hub's side of one edge connection, without I/O: hello/welcome, refusals, rates, the brake, acknowledgements, the hold.

``HubSession`` decodes what an agent sends and decides every protocol answer;
the asyncio shell (``ingest.edge_endpoint``) reads the socket, asks the hub
core (screening, bed state, deduplication) and the store, and tells the
session what they said, in the manner of the sans-I/O protocols of
``websockets`` and ``h11``:

* ``throttle(size, now)`` before handling a frame: how long to wait first
  (frames and bytes per second; an agent over its rate is read more slowly
  and told so, at most once a second; nothing is dropped);
* ``brake(brake_s, now)`` before handling a message, with the hub's intake
  brake (``ingest.overload``): how long to wait first. An agent whose hello
  did not say ``pace`` waits the whole brake before every message, at most
  ``TCP_BRAKE_MAX_S``, as TCP backpressure (which also holds back its
  keepalive pings, so a longer wait would cost it its connection). One that did is
  *paced*: it is told to send at most ``PACE_SHARE`` of the hub's read rate
  under the brake (one frame per ``brake_s``), so its frames wait in its spool
  and the socket drains; it is read at that rate (a token bucket of
  ``PACE_BURST`` frames), so an agent that keeps to its pace is read at once,
  pings and all. A new ``Pace`` goes only when the rate changes by
  ``PACE_CHANGE`` or more, or on or off, at most every ``PACE_NOTICE_S``;
  ``Pace(None)`` when the brake ends (counted: ``paces_sent``). The store is a
  brake too: a reader kept waiting for it to take a frame reports the wait
  (``store_waited``), and a pacing agent is paced by it (the reader waits no
  longer than the store makes it), until it has stayed short for a few seconds;
* the connection belongs to one agent, authenticated by the shell before the
  session starts (``agent``, with the ``beds`` registered to it): a hello
  naming another agent closes it (``CLOSE_POLICY``), and the hello the hub
  registers carries the registered beds, whatever the agent announced (beds
  it announced beyond them are named back to it, ``unregistered_beds``);
* ``receive_data(data)`` returns events: ``HelloReceived`` (the shell
  registers the agent and answers ``welcome(last_seq)``), ``StatusReceived``,
  ``FrameReceived`` (the shell screens it and reports ``frame_taken``), and
  ``FrameRefused`` (counted by the hub; ``settle`` names a frame refused for
  good, to be acknowledged in turn);
* verdicts, in the order frames were submitted: ``frame_handled`` (durable,
  a duplicate, or refused for good) or ``store_failed``;
* the hold: once the store fails, nothing more is submitted or acknowledged
  (the frames still reach the bed state); when every frame submitted before
  is settled (``hold_drained``), one held batch is retried every
  ``retry_delay`` seconds (``retry_tick``, ``retry_failed``); when the store
  takes it, the session closes with ``CLOSE_STORE_RECOVERED`` and the agent
  re-sends everything unacknowledged;
* ``data_to_send()``: the messages for the agent, encoded; ``close_code``:
  set once the connection must close.

Acknowledgements are cumulative: ``Ack(mark, also)`` where ``mark`` is the
agent's contiguous durable watermark in the hub-wide ``SeqTracker`` (which the
hub core updates) and ``also`` the frames handled above it, sent every
``ACK_EVERY`` frames or as soon as no verdict is pending.

The session is generic in the store's batch type ``B``, which it only holds.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from wire.codec import MAX_PACE, MIN_PACE, WireError, encode_hub
from wire.dedup import SeqTracker
from wire.messages import Ack, ErrorReport, Hello, HubMessage, ObsFrame, Pace, Status, WaveChunk, Welcome
from wire.obs_frame_fast import decode_edge
from wire.token_bucket import TokenBucket

log = logging.getLogger(__name__)

ACK_EVERY = 64  # under sustained load, acknowledge at least this often
HOLD_RETRY_S = (0.5, 5.0)  # while holding, the held batch is retried after 0.5 s, doubling up to 5 s
MAX_THROTTLE_S = 5.0  # the longest single wait before reading the next frame
RATE_NOTICE_S = 1.0  # an agent over its rate is told at most this often
TCP_BRAKE_MAX_S = 1.0  # the longest brake an agent that does not pace waits per message (its pings queue behind)
PACE_SHARE = 0.75  # a paced agent may send this share of what the hub reads under the brake: the socket drains
PACE_CHANGE = 0.25  # a new pace only when the rate changes by this share or more (or on or off)
PACE_NOTICE_S = 1.0  # and at most this often
PACE_BURST = 32.0  # frames a paced agent's socket may hold that are read at once (those sent before its pace came)
STORE_SLOW_MIN_S = 0.1  # a reader that waited this long for the store to take a frame paces its agent too
STORE_SLOW_DECAY_S = 2.0  # and that wait counts less and less: it halves about every 1.4 s without another
CLOSE_POLICY = 1008  # this connection may not do that: it is another agent's, or its secret was revoked
CLOSE_HUB_ERROR = 1011  # any other hub error: reconnect and re-send
CLOSE_STORE_RECOVERED = 1013  # "try again later": reconnect now and re-send what is unacknowledged

B = TypeVar("B")


@dataclass(frozen=True, slots=True)
class HelloReceived:
    """A new agent connection: register it, then answer ``HubSession.welcome(last durable seq)``. ``hello.beds``
    are the beds registered to the agent; ``unregistered``: beds it announced beyond them (refused)."""

    hello: Hello
    unregistered: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StatusReceived:
    status: Status


@dataclass(frozen=True, slots=True)
class FrameReceived:
    """A data frame from a welcomed agent: screen it, then report ``HubSession.frame_taken``."""

    frame: ObsFrame | WaveChunk


@dataclass(frozen=True, slots=True)
class FrameRefused:
    """A frame was refused (the agent is told why). ``settle``: its number when it is refused for good, to be
    acknowledged after the frames before it (``frame_handled``), like a stored one."""

    settle: int | None = None


HubEvent = HelloReceived | StatusReceived | FrameReceived | FrameRefused


class HubSession(Generic[B]):
    def __init__(
        self,
        seqs: SeqTracker,
        *,
        agent: str,
        beds: Collection[str],
        max_frames_per_s: float,
        max_bytes_per_s: float,
        now: float,
        counters: Counter[str] | None = None,
    ) -> None:
        self.seqs = seqs
        self.counters: Counter[str] = counters if counters is not None else Counter()
        self.hello: Hello | None = None
        self._unregistered: tuple[str, ...] = ()  # beds the hello announced beyond those registered to the agent
        self.holding = False  # the store is failing: frames feed the live view only and stay unacknowledged
        self.held_batch: B | None = None  # the batch to retry until the store takes it
        self.close_code: int | None = None
        self.close_reason = ""
        self.agent = agent  # authenticated by the shell (its secret, or its client certificate)
        self.beds = tuple(sorted(beds))  # the beds registered to it: data for any other bed is refused
        self._out: list[HubMessage] = []
        self._also: list[int] = []  # handled since the last acknowledgement
        self._retry_delay = HOLD_RETRY_S[0]
        self._max_frames_per_s = max_frames_per_s
        self._max_bytes_per_s = max_bytes_per_s
        self._frames = TokenBucket(max_frames_per_s, max_frames_per_s, now)
        self._bytes = TokenBucket(max_bytes_per_s, max_bytes_per_s, now)
        self._last_rate_notice = -math.inf
        self.pace: float | None = None  # frames/s the agent was last told (None: unpaced)
        self._last_pace = -math.inf
        self._braked = TokenBucket(1.0, PACE_BURST, now)  # a paced agent's reads under the brake (rate 1 / brake_s)
        self._store_slow = (0.0, now)  # the longest recent wait for the store to take a frame, and when

    # --- reading -------------------------------------------------------------------

    def throttle(self, size: int, now: float) -> float:
        """A frame of ``size`` bytes arrived at ``now``: seconds to wait before handling it (0: at once)."""
        wait = max(self._frames.delay_for(1, now), self._bytes.delay_for(size, now))
        if wait <= 0:
            return 0.0
        self.counters["rate_limited_waits"] += 1
        if now - self._last_rate_notice >= RATE_NOTICE_S:
            self._last_rate_notice = now
            self._send(ErrorReport("rate_limited", f"more than {self._max_frames_per_s:g} frames/s or "
                                   f"{self._max_bytes_per_s:g} bytes/s: reading slowed down, nothing dropped"))  # fmt: skip
        return min(wait, MAX_THROTTLE_S)

    def store_waited(self, wait_s: float, now: float) -> None:
        """The reader waited ``wait_s`` for the store to take a frame (its queue full): the store is the brake."""
        if wait_s >= self.store_slow_s(now):
            self._store_slow = (wait_s, now)

    def store_slow_s(self, now: float) -> float:
        """The recent wait for the store, decaying with time (0 once it stops mattering)."""
        wait, at = self._store_slow
        slow = wait * math.exp(-(now - at) / STORE_SLOW_DECAY_S)
        return slow if slow >= STORE_SLOW_MIN_S else 0.0

    def brake(self, brake_s: float, now: float) -> float:
        """The hub's intake brake is ``brake_s`` (0: none) at ``now``, a message having arrived: seconds to wait
        before handling it. Queues a ``Pace`` for an agent that understands it (see the module's note); a store
        that keeps the reader waiting (``store_waited``) paces it as a brake would, the wait itself being the brake."""
        if self.hello is None or not self.hello.pace:
            return min(brake_s, TCP_BRAKE_MAX_S)
        slow = max(brake_s, self.store_slow_s(now))
        rate = None if slow <= 0 else round(min(MAX_PACE, max(MIN_PACE, PACE_SHARE / slow)), 3)
        if rate != self.pace and now - self._last_pace >= PACE_NOTICE_S and _meaningful(self.pace, rate):
            self.pace, self._last_pace = rate, now
            self.counters["paces_sent"] += 1
            self._send(Pace(rate))
        if brake_s <= 0:
            return 0.0
        self._braked.rate = 1 / brake_s
        return self._braked.delay_for(1, now)

    def receive_data(self, data: bytes | str) -> list[HubEvent]:
        """One WebSocket message from the agent (text or binary)."""
        if self.close_code is not None:
            return []
        try:
            msg = decode_edge(data)
        except WireError as exc:
            self._send(ErrorReport(exc.code, exc.detail, exc.seq))
            settle = exc.seq if exc.seq is not None and self.hello is not None and not self.holding else None
            return [FrameRefused(settle)]
        if isinstance(msg, Status):
            if self.hello is None:
                return self._refuse("send hello before status")
            return [StatusReceived(msg)]
        if isinstance(msg, Hello):
            if self.hello is not None:
                return self._refuse("hello was already sent on this connection")
            if msg.agent != self.agent:
                self.counters["hello_for_another_agent"] += 1
                self._send(ErrorReport("protocol", f"this connection is agent {self.agent!r}'s; hello names {msg.agent!r}"))
                self._close(CLOSE_POLICY, "hello names another agent")
                return []
            self._unregistered = tuple(sorted(set(msg.beds) - set(self.beds)))
            self.counters["unregistered_beds_announced"] += len(self._unregistered)
            self.hello = replace(msg, beds=self.beds)
            return [HelloReceived(self.hello, self._unregistered)]
        if self.hello is None:
            return self._refuse("send hello before data frames", msg.seq)
        return [FrameReceived(msg)]

    def _refuse(self, detail: str, seq: int | None = None) -> list[HubEvent]:
        self._send(ErrorReport("protocol", detail, seq))
        return [FrameRefused()]

    def welcome(self, last_seq: int) -> None:
        """The hub registered the agent and holds every frame of its epoch up to ``last_seq``."""
        self._send(Welcome(last_seq=last_seq))
        if self._unregistered:  # after the welcome: the agent is connected, and told which of its beds will be refused
            self._send(ErrorReport("unregistered_beds", f"beds {list(self._unregistered)[:20]} are not registered to agent "
                                   f"{self.agent!r}: their data will be refused (an admin registers beds with teleicu agents)"))  # fmt: skip

    def frame_taken(self, seq: int, batch: B | None, rejected: Sequence[dict[str, Any]], *, storable: bool,
                    store_error: str | None) -> bool:  # fmt: skip
        """The hub screened frame ``seq``: ``batch`` to store (None for a duplicate), ``rejected`` values, whether
        the batch holds rows (``storable``) and the store's current error. Returns True when the shell is to submit
        the batch (if any) and report its verdict; False while holding (the frame stays unacknowledged)."""
        if rejected:
            self._send(ErrorReport("rejected", f"{len(rejected)} value(s) rejected, the rest of the frame was kept",
                                   seq, tuple(rejected)))  # fmt: skip
        if not self.holding and store_error is not None:
            self._begin_hold(store_error)
        if self.holding:
            self.counters["frames_held_unstored"] += 1
            if self.held_batch is None and storable:
                self.held_batch = batch
            return False
        return True

    # --- verdicts ------------------------------------------------------------------

    def frame_handled(self, seq: int, *, idle: bool) -> None:
        """Frame ``seq`` is durable (or a duplicate, or refused for good) and the hub core has recorded it;
        ``idle``: no other verdict is pending, so acknowledge now."""
        self._also.append(seq)
        if idle or len(self._also) >= ACK_EVERY:
            self._acknowledge()

    def _acknowledge(self) -> None:
        if self.hello is None:
            return
        mark = self.seqs.last_durable(self.hello.agent, self.hello.epoch)
        self._send(Ack(mark, tuple(sorted(s for s in self._also if s > mark))))
        self._also = []

    def store_failed(self, batch: B | None, error: str | None) -> None:
        """The store failed to write ``batch``: hold. Verdicts still pending are dropped by the shell (those
        frames stay unacknowledged)."""
        if self.held_batch is None:
            self.held_batch = batch
        if not self.holding:
            self._begin_hold(error)

    def _begin_hold(self, error: str | None) -> None:
        self.holding = True
        self.counters["store_holds"] += 1
        error = error or "a write failed"
        log.error("store failing (%s): holding agent %s's frames in its spool", error, self.hello.agent if self.hello else "?")
        self._send(ErrorReport("store_unavailable", f"the hub cannot store data ({error}); keep sending: live data is "
                               "shown, nothing more is acknowledged, and you will be asked to re-send once the store recovers"))  # fmt: skip

    # --- the hold --------------------------------------------------------------------

    def hold_drained(self) -> None:
        """Holding, and every frame submitted before the hold has its verdict: acknowledge what became durable."""
        if self._also:
            self._acknowledge()

    @property
    def retry_delay(self) -> float:
        """Seconds to wait before the next ``retry_tick``."""
        return self._retry_delay

    def retry_tick(self, store_error: str | None) -> B | None:
        """The retry timer fired: the batch to write now, if any. With no batch held (no data since the hold
        began) a store that no longer reports an error counts as recovered."""
        if self.held_batch is None and store_error is None:
            self.store_recovered()
        return self.held_batch

    def retry_failed(self) -> None:
        self._retry_delay = min(self._retry_delay * 2, HOLD_RETRY_S[1])

    def store_recovered(self) -> None:
        """The store took the held batch: the agent must reconnect and re-send what was not acknowledged."""
        self._close(CLOSE_STORE_RECOVERED, "store recovered: reconnect and re-send")

    # --- output ----------------------------------------------------------------------

    def _send(self, msg: HubMessage) -> None:
        self._out.append(msg)

    def _close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason

    def data_to_send(self) -> list[bytes]:
        """The messages for the agent since the last call, encoded (JSON text frames), in order."""
        out, self._out = self._out, []
        return [encode_hub(m) for m in out]


def _meaningful(old: float | None, new: float | None) -> bool:
    """Whether a pace of ``new`` is worth telling an agent paced at ``old``: on, off, or a change of ``PACE_CHANGE``."""
    if old is None or new is None:
        return old != new
    return abs(new - old) >= PACE_CHANGE * old
