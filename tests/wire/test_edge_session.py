"""EdgeSession without sockets: numbering and floor, hello/welcome, live first, the paced ack-clocked backlog,
status reports, acknowledgements deleting each frame once, drops, reconnects."""

from __future__ import annotations

import json
import random

import pytest

from wire.codec import WireError, decode_edge, encode_hub
from wire.edge_session import (
    BACKLOG_TICK_S,
    BACKLOG_WINDOW,
    MAX_LIVE_QUEUE,
    BacklogFrame,
    DeleteFrames,
    EdgeSession,
    EdgeState,
    HubError,
    LiveFrame,
    StatusDue,
    Welcomed,
)
from wire.messages import Ack, ErrorReport, Hello, Status, Welcome


def session(**kw) -> EdgeSession:
    args = {"agent": "edge-T", "ward": "T", "beds": ["T-1"], "epoch": 7, "backlog_rate": 200, "status_s": 5.0} | kw
    return EdgeSession(**args)


def spool(s: EdgeSession, n: int, dropped: tuple[int, ...] = ()) -> list[int]:
    seqs = list(range(s.next_seq, s.next_seq + n))
    s.spooled([(q, f"frame {q}".encode()) for q in seqs], dropped)
    return seqs


def hub_says(s: EdgeSession, msg) -> list:
    return s.receive_data(encode_hub(msg))


def open_session(s: EdgeSession, last_seq: int = 0) -> list:
    hello = decode_edge(s.connect())
    assert isinstance(hello, Hello)
    return hub_says(s, Welcome(last_seq))


def drain(s: EdgeSession, now: float) -> list:
    out = []
    while (item := s.next_send(now)) is not None:
        out.append(item)
    return out


def deleted(events: list) -> list[int]:
    return [q for ev in events if isinstance(ev, DeleteFrames) for lo, hi in ev.runs for q in range(lo, hi + 1)]


def test_frames_are_numbered_as_spooled_and_the_floor_stays_below_every_spooled_frame() -> None:
    s = session()
    assert s.floor == 0 and s.next_seq == 1
    assert spool(s, 3) == [1, 2, 3]
    assert s.floor == 0 and s.spooled_count == 3
    hub_says(s, Ack(0, (2,)))  # acknowledged out of order: 1 still waits
    assert s.floor == 0
    hub_says(s, Ack(1))
    assert s.floor == 2
    hub_says(s, Ack(3))
    assert s.floor == 3 and s.spooled_count == 0
    with pytest.raises(ValueError):
        s.spooled([(5, b"x")])  # 4 is next: no gap may open
    with pytest.raises(ValueError):
        s.spooled([(4, b"x"), (6, b"y")])
    assert s.next_seq == 4  # nothing was taken


def test_a_restarted_agent_continues_from_what_its_spool_holds() -> None:
    s = session(next_seq=20, spooled=[(5, 7), (10, 12)])
    assert s.floor == 4 and s.spooled_count == 6 and s.epoch == 7
    hello = decode_edge(s.connect())
    assert hello == Hello("edge-T", 7, "T", ("T-1",), floor=4, pace=True)
    assert spool(s, 1) == [20]
    with pytest.raises(ValueError):
        session(next_seq=12, spooled=[(5, 12)])  # next_seq must be above what is spooled


def test_welcome_deletes_what_the_hub_holds_and_everything_spooled_before_is_backlog() -> None:
    s = session()
    spool(s, 5)
    events = open_session(s, last_seq=3)
    assert deleted(events) == [1, 2, 3]
    assert events[-1] == Welcomed(3, 2) and s.connected and s.counters["connects"] == 1
    spool(s, 2)  # live: 6, 7
    items = drain(s, 0.0)
    assert [type(i) for i in items] == [LiveFrame, LiveFrame, StatusDue, BacklogFrame, BacklogFrame]
    assert [i.seq for i in items if not isinstance(i, StatusDue)] == [6, 7, 4, 5]
    assert s.counters["frames_sent_live"] == 2 and s.counters["frames_sent_backlog"] == 2 and s.counters["frames_sent"] == 4


def test_live_frames_overtake_the_backlog() -> None:
    s = session()
    spool(s, 40)
    open_session(s)
    assert isinstance(s.next_send(0.0), StatusDue)
    assert s.next_send(0.0) == BacklogFrame(1)
    spool(s, 1)
    assert s.next_send(0.0) == LiveFrame(41, b"frame 41")
    assert s.next_send(0.0) == BacklogFrame(2)


def test_the_backlog_is_ack_clocked() -> None:
    s = session(backlog_rate=10_000)
    spool(s, 100)
    open_session(s)
    sent = [i.seq for i in drain(s, 0.0) if isinstance(i, BacklogFrame)]
    assert sent == list(range(1, BACKLOG_WINDOW + 1))
    assert s.timeout(0.0) == pytest.approx(5.0)  # only an acknowledgement (or the status timer) can bring more
    hub_says(s, Ack(0, (3, 4)))  # two slots open, even acknowledged individually
    assert [i.seq for i in drain(s, 0.0)] == [17, 18]
    hub_says(s, Ack(18))
    assert [i.seq for i in drain(s, 0.0)] == list(range(19, 19 + BACKLOG_WINDOW))


def test_the_backlog_is_paced_at_backlog_rate() -> None:
    s = session(backlog_rate=50)  # 5 frames per 0.1 s tick
    spool(s, 20)
    open_session(s)
    assert isinstance(s.next_send(0.0), StatusDue)
    first = drain(s, 0.0)
    assert [i.seq for i in first] == [1, 2, 3, 4, 5]
    assert s.timeout(0.05) == pytest.approx(BACKLOG_TICK_S - 0.05)
    assert drain(s, 0.05) == []
    assert [i.seq for i in drain(s, BACKLOG_TICK_S)] == [6, 7, 8, 9, 10]


def test_status_reports_are_due_after_welcome_on_change_and_every_status_s_and_carry_the_floor() -> None:
    s = session(status_s=2.0)
    spool(s, 3)
    assert s.next_send(0.0) is None and s.timeout(0.0) is None  # not connected
    open_session(s)
    hub_says(s, Ack(1))
    assert isinstance(s.next_send(10.0), StatusDue)  # at once after the welcome
    msg = decode_edge(s.status_message([{"bed": "T-1", "device": "m", "status": "ok", "detail": "", "t": 1}], {"frames": 2}))
    assert isinstance(msg, Status) and msg.spool == {"frames": 2, "floor": 1} and msg.devices[0]["device"] == "m"
    drain(s, 10.0)  # the backlog
    assert s.timeout(10.5) == pytest.approx(1.5)
    assert not any(isinstance(i, StatusDue) for i in drain(s, 11.9))
    assert isinstance(s.next_send(12.0), StatusDue)
    s.status_changed()
    assert s.timeout(12.1) == 0.0 and isinstance(s.next_send(12.1), StatusDue)
    assert s.report({"frames": 2}) == {"frames": 2, "floor": 1}


def test_each_frame_is_deleted_once_whatever_the_acknowledgements_repeat() -> None:
    s = session()
    spool(s, 10)
    open_session(s)
    assert deleted(hub_says(s, Ack(2, (5, 7)))) == [1, 2, 5, 7]
    assert deleted(hub_says(s, Ack(2, (5, 7)))) == []  # a repeat deletes nothing
    assert deleted(hub_says(s, Ack(6, (7, 9)))) == [3, 4, 6, 9]
    assert s.counters["frames_acked"] == 8 and s.acked == 6
    assert deleted(hub_says(s, Ack(3))) == [] and s.acked == 6  # an older cumulative mark changes nothing


def test_acknowledgements_of_frames_never_numbered_are_ignored_and_counted() -> None:
    s = session()
    spool(s, 3)
    open_session(s)
    assert deleted(hub_says(s, Ack(50, (60,)))) == [1, 2, 3]
    assert s.floor == 3 and s.acked == 3 and s.counters["acks_beyond_sequence"] == 1
    assert spool(s, 1) == [4] and s.floor == 3
    assert deleted(hub_says(s, Ack(9))) == [4] and s.counters["acks_beyond_sequence"] == 2
    assert s.hello.floor == 4


def test_frames_the_spool_dropped_are_not_sent_and_the_floor_moves_over_them() -> None:
    s = session()
    spool(s, 4)
    open_session(s)
    spool(s, 2, dropped=(1, 2, 5))  # the size policy let these go (5 among the new ones)
    assert s.floor == 2
    sent = [i.seq for i in drain(s, 0.0) if not isinstance(i, StatusDue)]
    assert sent == [6, 3, 4]
    s.dropped([3])
    assert s.floor == 3


def test_after_a_lost_connection_unsent_live_frames_go_out_as_backlog() -> None:
    s = session()
    open_session(s)
    spool(s, 3)
    assert s.next_send(0.0) == LiveFrame(1, b"frame 1")
    s.connection_lost()
    assert s.state is EdgeState.IDLE and s.next_send(0.0) is None
    spool(s, 1)  # spooled while disconnected
    hello = decode_edge(s.connect())
    assert hello.floor == 0
    open_session_events = hub_says(s, Welcome(1))  # the hub stored frame 1
    assert deleted(open_session_events) == [1]
    assert [i.seq for i in drain(s, 0.0) if isinstance(i, BacklogFrame)] == [2, 3, 4]


def test_the_live_queue_is_bounded() -> None:
    s = session()
    open_session(s)
    spool(s, MAX_LIVE_QUEUE + 5)
    live = [i for i in drain(s, 0.0) if isinstance(i, LiveFrame)]
    assert len(live) == MAX_LIVE_QUEUE  # the rest waits in the spool for the next connection
    s.connection_lost()
    open_session(s, last_seq=MAX_LIVE_QUEUE)
    assert [i.seq for i in drain(s, 0.0) if isinstance(i, BacklogFrame)] == list(range(MAX_LIVE_QUEUE + 1, MAX_LIVE_QUEUE + 6))


def test_hub_errors_are_counted_and_handed_to_the_shell() -> None:
    s = session()
    open_session(s)
    report = ErrorReport("store_unavailable", "disk full")
    assert hub_says(s, report) == [HubError(report)]
    assert s.counters["hub_error_store_unavailable"] == 1


def test_protocol_violations_from_the_hub_are_wire_errors() -> None:
    s = session()
    s.connect()
    with pytest.raises(WireError, match="expected welcome, got error unknown_agent"):
        hub_says(s, ErrorReport("unknown_agent", "not allowed"))
    assert s.counters["hub_error_unknown_agent"] == 1
    s.connection_lost()
    s.connect()
    with pytest.raises(WireError, match="expected welcome, got Ack"):
        hub_says(s, Ack(1))
    s.connection_lost()
    open_session(s)
    with pytest.raises(WireError, match="welcome while open"):
        hub_says(s, Welcome(0))
    with pytest.raises(WireError):
        s.receive_data(json.dumps({"type": "ack", "seq": "x"}))
    with pytest.raises(RuntimeError):
        s.connect()  # already connected


def test_reconnects_back_off_exponentially_with_full_jitter() -> None:
    s = session(backoff=(0.25, 2.0), rng=random.Random(1))
    delays = [s.reconnect_delay() for _ in range(40)]
    assert all(0 <= d <= 2.0 for d in delays)
    assert max(delays[:1]) <= 0.25 and max(delays[5:]) > 1.0
    for _ in range(20):  # the socket opens but the hub refuses before its welcome: no reset, still backing off
        s.connect()
        with pytest.raises(WireError):
            s.receive_data(encode_hub(ErrorReport("protocol", "not welcome here")))
        s.connection_lost()
    assert max(s.reconnect_delay() for _ in range(10)) > 1.0
    s.connect()  # a session came up: the next failure starts again from the shortest delay
    s.receive_data(encode_hub(Welcome(0)))
    s.connection_lost()
    assert s.reconnect_delay() <= 0.25
