"""EdgeSession under the hub's pace, without sockets: the rate, newest live frame first, held frames, and a
hypothesis state machine holding the delivery invariants under any interleaving of spooling, paces, acks, drops
and lost connections."""

from __future__ import annotations

import sys
from collections import Counter

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from wire.codec import decode_edge, encode_hub, encode_wave_chunk
from wire.edge_session import BACKLOG_WINDOW, DeleteFrames, EdgeSession, LiveFrame, StatusDue
from wire.messages import Ack, Hello, Pace, WaveChunk, Welcome


def session(**kw) -> EdgeSession:
    return EdgeSession(**({"agent": "edge-P", "ward": "P", "beds": ["P-1"], "epoch": 7, "backlog_rate": 200, "status_s": 5.0} | kw))


def spool(s: EdgeSession, n: int) -> list[int]:
    seqs = list(range(s.next_seq, s.next_seq + n))
    s.spooled([(q, f"frame {q}".encode()) for q in seqs])
    return seqs


def opened(s: EdgeSession, last_seq: int = 0) -> None:
    hello = decode_edge(s.connect())
    assert isinstance(hello, Hello) and hello.pace  # the agent says it understands pacing
    s.receive_data(encode_hub(Welcome(last_seq)))


def numbered(items: list) -> list[tuple[str, int]]:
    return [("live" if isinstance(i, LiveFrame) else "backlog", i.seq) for i in items if not isinstance(i, StatusDue)]


def drain(s: EdgeSession, now: float) -> list:
    out = []
    while (item := s.next_send(now)) is not None:
        out.append(item)
    return out


def test_paced_the_newest_live_frame_goes_first_and_the_older_ones_are_held_then_sent_oldest_first() -> None:
    s = session()
    opened(s)
    drain(s, 0.0)  # the first status report
    assert s.receive_data(encode_hub(Pace(2.0))) == [] and s.pace == 2.0
    spool(s, 5)  # 1..5 wait live
    assert numbered(drain(s, 1.0)) == [("live", 5)]  # one frame now (the bucket holds one), the newest
    assert s.timeout(1.0) == pytest.approx(0.5)  # the next one in half a second
    assert drain(s, 1.2) == []
    spool(s, 2)  # 6, 7
    assert numbered(drain(s, 1.5)) == [("live", 7)]  # newest again; 6 joins the held
    assert numbered(drain(s, 2.0)) == [("backlog", 1)]  # nothing live waits: the held go, oldest first
    assert numbered(drain(s, 2.5)) == [("backlog", 2)]
    assert s.counters["frames_held"] == 5 and s.counters["frames_sent_paced"] == 4 and s.counters["paces_received"] == 1
    s.receive_data(encode_hub(Pace(None)))  # unpaced: the rest at the backlog's rate, live first again
    assert s.pace is None and s.timeout(2.6) == 0.0
    spool(s, 1)  # 8
    assert numbered(drain(s, 2.6)) == [("live", 8), ("backlog", 3), ("backlog", 4), ("backlog", 6)]
    sent = [1, 2, 3, 4, 5, 6, 7, 8]
    events = s.receive_data(encode_hub(Ack(8)))
    assert [q for ev in events if isinstance(ev, DeleteFrames) for lo, hi in ev.runs for q in range(lo, hi + 1)] == sent
    assert s.spooled_count == 0 and drain(s, 3.0) == []


def test_paced_the_newest_numerics_frame_goes_before_newer_waveform_chunks() -> None:
    """A flush spools the numerics frame and then the waveform chunks: the newest frame is a chunk. Paced, the
    vital signs go first; chunks go only when no numerics frame waits, and the rest are held, oldest first."""
    s = session()
    opened(s)
    drain(s, 0.0)
    s.receive_data(encode_hub(Pace(1.0)))
    wave = encode_wave_chunk(WaveChunk(0, "P-1", "ecg_ii", 0, 250, 0.005, (1, 2, 3)))
    s.spooled([(1, b'{"type":"obs"}'), (2, wave), (3, wave), (4, b'{"type":"obs"}'), (5, wave), (6, wave)])
    assert numbered(drain(s, 1.0)) == [("live", 4)]  # the newest numerics, not chunk 6
    s.spooled([(7, wave), (8, wave)])
    assert numbered(drain(s, 2.0)) == [("live", 8)]  # no numerics waiting: the newest chunk
    assert numbered(drain(s, 3.0)) == [("backlog", 1)]  # then the held, oldest first
    assert s.counters["frames_held"] == 6


def test_status_reports_are_not_paced() -> None:
    s = session(status_s=1.0)
    opened(s)
    s.receive_data(encode_hub(Pace(0.1)))
    spool(s, 3)
    assert numbered(drain(s, 0.0)) == [("live", 3)]  # and the first status report
    assert isinstance(s.next_send(1.0), StatusDue)  # due again after 1 s, though no frame may go for 10 s
    assert s.next_send(1.0) is None
    assert s.timeout(1.0) == pytest.approx(1.0)  # the next status report comes before the next frame


def test_the_backlog_is_paced_too_and_a_new_connection_starts_unpaced() -> None:
    s = session()
    spool(s, 40)  # spooled before the connection: backlog
    opened(s)
    s.receive_data(encode_hub(Pace(4.0)))
    out = []
    for i in range(8):  # two seconds
        out += numbered(drain(s, i * 0.25))
    assert out == [("backlog", q) for q in range(1, 9)]
    s.connection_lost()
    opened(s)
    assert s.pace is None
    assert numbered(drain(s, 10.0)) == [("backlog", q) for q in range(1, 1 + BACKLOG_WINDOW)]  # window-bound, not paced


def test_a_held_frame_that_the_spool_drops_is_not_sent() -> None:
    s = session()
    opened(s)
    s.receive_data(encode_hub(Pace(1.0)))
    spool(s, 4)
    assert numbered(drain(s, 0.0)) == [("live", 4)]
    s.dropped([1, 2])
    assert numbered(drain(s, 1.0)) == [("backlog", 3)]
    assert numbered(drain(s, 5.0)) == []


def test_a_pace_before_the_welcome_is_out_of_place() -> None:
    s = session()
    s.connect()
    with pytest.raises(Exception, match="expected welcome"):
        s.receive_data(encode_hub(Pace(1.0)))


# --- the state machine ---------------------------------------------------------------


class PacedEdge(RuleBasedStateMachine):
    """One EdgeSession, a model spool and a model hub that stores what it receives and acknowledges some of it."""

    def __init__(self) -> None:
        super().__init__()
        self.s = session(status_s=2.0)
        self.now = 0.0
        self.spool: dict[int, bytes] = {}
        self.dropped: set[int] = set()
        self.stored: set[int] = set()  # the hub's store, across connections
        self.received: list[int] = []  # on this connection, not yet acknowledged
        self.sent_here: set[int] = set()  # sent on this connection
        self.deleted: Counter[int] = Counter()
        self.connected = False

    def _mark(self) -> int:
        mark = 0
        while mark + 1 in self.stored or mark + 1 in self.dropped or (mark + 1 < self.s.next_seq and mark + 1 <= self.s.floor):
            mark += 1
        return mark

    def _apply(self, events: list) -> None:
        for ev in events:
            if isinstance(ev, DeleteFrames):
                for lo, hi in ev.runs:
                    for q in range(lo, hi + 1):
                        assert q in self.spool, f"frame {q} deleted but not in the spool"
                        assert q in self.stored, f"frame {q} deleted before the hub stored it"
                        del self.spool[q]
                        self.deleted[q] += 1

    @rule(n=st.integers(1, 5))
    def produce(self, n: int) -> None:
        seqs = list(range(self.s.next_seq, self.s.next_seq + n))
        frames = [(q, b"f%d" % q) for q in seqs]
        self.spool.update(frames)
        self.s.spooled(frames)

    @precondition(lambda self: bool(self.spool))
    @rule()
    def spool_drops_its_oldest(self) -> None:
        q = min(self.spool)
        del self.spool[q]
        self.dropped.add(q)
        self.s.dropped([q])

    @rule(dt=st.sampled_from([0.01, 0.1, 0.5, 1.0, 3.0]))
    def tick(self, dt: float) -> None:
        self.now += dt

    @precondition(lambda self: not self.connected)
    @rule()
    def connect(self) -> None:
        self.s.connect()
        self.connected = True
        self.received, self.sent_here = [], set()
        self._apply(self.s.receive_data(encode_hub(Welcome(self._mark()))))

    @precondition(lambda self: self.connected)
    @rule(rate=st.none() | st.sampled_from([0.5, 1.0, 3.0, 10.0, 100.0]))
    def hub_paces(self, rate: float | None) -> None:
        assert self.s.receive_data(encode_hub(Pace(rate))) == []

    @precondition(lambda self: self.connected)
    @rule(limit=st.integers(1, 20))
    def edge_sends(self, limit: int) -> None:
        for _ in range(limit):
            item = self.s.next_send(self.now)
            if item is None:
                return
            if isinstance(item, StatusDue):
                continue
            assert item.seq not in self.sent_here, f"frame {item.seq} sent twice on one connection"
            assert item.seq in self.spool, f"frame {item.seq} sent but not in the spool"
            if isinstance(item, LiveFrame):
                assert item.data == self.spool[item.seq]
            self.sent_here.add(item.seq)
            self.received.append(item.seq)
            self.stored.add(item.seq)

    @precondition(lambda self: self.connected)
    @rule(data=st.data())
    def hub_acks(self, data: st.DataObject) -> None:
        some = data.draw(st.lists(st.sampled_from(self.received), unique=True), "acked") if self.received else []
        mark = self._mark()
        self.received = [q for q in self.received if q not in some]
        self._apply(self.s.receive_data(encode_hub(Ack(mark, tuple(sorted(q for q in some if q > mark))))))

    @precondition(lambda self: self.connected)
    @rule()
    def connection_lost(self) -> None:
        self.s.connection_lost()
        self.connected = False

    @invariant()
    def the_session_keeps_the_spools_account(self) -> None:
        assert sorted(q for lo, hi in self.s.spooled_runs() for q in range(lo, hi + 1)) == sorted(self.spool)
        assert all(n == 1 for n in self.deleted.values())

    def teardown(self) -> None:
        if sys.exc_info()[0] is not None:
            return
        last = self.s.next_seq - 1
        for _ in range(4 * last + 50):  # the pace (if any) stays: with nothing new, everything still goes
            if not self.spool:
                break
            if not self.connected:
                self.connect()
            self.edge_sends(10_000)
            self.received = []
            self._apply(self.s.receive_data(encode_hub(Ack(self._mark()))))
            self.now += 2.0
        assert not self.spool, f"frames {sorted(self.spool)[:10]} never acknowledged (pace {self.s.pace})"
        for q in range(1, last + 1):
            assert self.deleted[q] == (0 if q in self.dropped else 1), f"frame {q} deleted {self.deleted[q]} times"


PacedEdge.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
TestPacedEdge = PacedEdge.TestCase
