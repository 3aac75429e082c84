"""The JetStream uplink's decisions without I/O: window, probing, backoff, live before backlog, deletions, floor."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.jetstream_session import JetStreamSession


def session(**kw: object) -> JetStreamSession:
    args: dict = {"agent": "edge-A", "ward": "A", "epoch": 7, "max_in_flight": 4, "backoff": (1.0, 8.0), "rng": random.Random(1)}
    args.update(kw)
    return JetStreamSession(**args)


def drain(s: JetStreamSession, now: float = 0.0) -> list[int]:
    out = []
    while (p := s.next_publish(now)) is not None:
        out.append(p.seq)
    return out


def test_nothing_is_published_before_the_connection_and_one_frame_probes_first() -> None:
    s = session()
    s.spooled([1, 2, 3, 4, 5, 6])
    assert s.next_publish(0.0) is None
    s.connected()
    first = s.next_publish(0.0)
    assert first is not None and first.seq == 1 and s.next_publish(0.0) is None  # probing: one at a time
    key = first.key
    assert (key.ward, key.agent, key.epoch, key.seq, key.floor, key.msg_id) == ("A", "edge-A", 7, 1, 0, "edge-A:7:1")
    s.published(1)
    assert drain(s) == [2, 3, 4, 5]  # then the full window of 4
    s.published(3)
    assert drain(s) == [6] and s.in_flight == 4


def test_an_acknowledgement_releases_the_frame_for_deletion_once_and_moves_the_floor() -> None:
    s = session(max_in_flight=8)
    s.spooled([1, 2, 3])
    s.connected()
    s.published(drain(s)[0])
    assert drain(s) == [2, 3]
    s.published(3, duplicate=True)
    assert s.floor == 1  # 2 is not acknowledged yet
    s.published(2)
    s.published(2)  # a second acknowledgement of the same frame changes nothing
    d = s.take_deletions()
    assert d is not None and d.runs == ((1, 3),) and s.take_deletions() is None
    assert s.floor == 3 and s.unacked == 0
    assert s.counters["frames_acked"] == 3 and s.counters["frames_acked_duplicate"] == 1


def test_a_failure_keeps_the_frame_pauses_with_backoff_and_probes_again() -> None:
    s = session(max_in_flight=8)
    s.spooled([1, 2, 3, 4])
    s.connected()
    s.published(drain(s)[0])
    assert drain(s, 0.0) == [2, 3, 4]
    pause = s.failed(2, 10.0)
    assert 0 <= pause <= 1.0 and s.probing
    assert s.failed(3, 10.1) == pytest.approx(pause - 0.1)  # in flight when the pause began: it is not lengthened
    assert s.next_publish(10.0 + pause - 0.01) is None and s.timeout(10.0) == pytest.approx(pause)
    s.published(4)
    assert drain(s, 10.0 + pause) == [2, 3]  # the failed frames go again, lowest first, all at once after a success
    assert s.take_deletions().runs == ((1, 1), (4, 4))  # type: ignore[union-attr]


def test_consecutive_failures_back_off_exponentially_until_a_success() -> None:
    s = session(rng=random.Random(3), backoff=(1.0, 8.0))
    s.spooled([1])
    s.connected()
    now, ceilings = 0.0, []
    for _ in range(6):
        p = s.next_publish(now)
        assert p is not None and p.seq == 1  # the same frame, probed again and again, never dropped
        pause = s.failed(1, now)
        ceilings.append(pause)
        now += pause
    assert all(0 <= c <= 8.0 for c in ceilings) and s.unacked == 1
    assert s.next_publish(now) is not None
    s.published(1)  # a success resets the backoff: the next pause is within the first ceiling again
    s.spooled([2])
    assert s.failed(drain(s, now)[0], now) <= 1.0


def test_live_frames_go_before_the_backlog_and_a_reconnection_starts_over() -> None:
    s = session(max_in_flight=100)
    s.spooled(list(range(1, 6)))  # an outage's backlog
    s.connected()
    s.published(drain(s)[0])  # frame 1 probes
    s.spooled([6, 7])  # live
    assert drain(s) == [6, 7, 2, 3, 4, 5]
    s.connection_lost()  # 6, 7, 2..5 in flight, abandoned
    assert s.next_publish(0.0) is None
    s.connected()
    s.spooled([8])
    s.published(drain(s)[0])  # the probe: frame 8 (live on this connection)
    assert drain(s) == [2, 3, 4, 5, 6, 7]  # the abandoned ones are backlog now
    s.published(5)  # an acknowledgement counts whenever it arrives
    assert s.take_deletions().runs == ((1, 1), (5, 5), (8, 8))  # type: ignore[union-attr]


def test_frames_the_spool_dropped_are_not_published() -> None:
    s = session(max_in_flight=10)
    s.spooled([1, 2, 3, 4], dropped=[1, 2])
    s.connected()
    assert s.floor == 2
    s.published(drain(s)[0])
    assert drain(s) == [4] and s.floor == 3
    s.dropped([4])
    s.published(4)  # its acknowledgement still arrives: nothing to delete, it is gone already
    assert s.take_deletions().runs == ((3, 3),)  # type: ignore[union-attr]
    assert s.floor == 4


def test_numbering_must_continue_the_spool() -> None:
    with pytest.raises(ValueError):
        session(next_seq=3, spooled=[(1, 5)])
    s = session(next_seq=10, spooled=[(4, 9)])
    assert s.floor == 3
    with pytest.raises(ValueError):
        s.spooled([11])
    s.spooled([10, 11])
    assert s.next_seq == 12


OPS = st.lists(st.tuples(st.sampled_from(["spool", "publish", "ack", "dup", "fail", "drop", "lost", "connect", "tick"]),
                         st.integers(0, 50)), max_size=120)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(ops=OPS)
def test_every_frame_is_deleted_once_only_after_its_acknowledgement_and_the_floor_never_lies(ops: list[tuple[str, int]]) -> None:
    s = session(max_in_flight=5, backoff=(0.01, 0.05))
    now = 0.0
    next_seq, spooled, acked, dropped, deleted = 1, set(), set(), set(), []
    in_flight: list[int] = []
    floor = reported = 0
    for op, n in ops:
        now += 0.02
        if op == "spool":
            seqs = list(range(next_seq, next_seq + n % 4 + 1))
            next_seq += len(seqs)
            s.spooled(seqs)
            spooled |= set(seqs)
        elif op == "publish":
            p = s.next_publish(now)
            if p is not None:
                assert p.seq in spooled - acked - dropped, "published a frame that is not waiting"
                assert p.key.floor >= floor
                floor = p.key.floor
                in_flight.append(p.seq)
        elif op in ("ack", "dup", "fail") and in_flight:
            seq = in_flight.pop(n % len(in_flight))
            if op == "fail":
                s.failed(seq, now)
            else:
                s.published(seq, duplicate=op == "dup")
                acked.add(seq)
        elif op == "drop" and spooled - acked - dropped:
            seq = min(spooled - acked - dropped)
            s.dropped([seq])
            dropped.add(seq)
        elif op == "lost":
            s.connection_lost()
        elif op == "connect" and not s.open:
            s.connected()
        d = s.take_deletions()
        if d is not None:
            deleted += [q for lo, hi in d.runs for q in range(lo, hi + 1)]
        assert all(q in acked for q in deleted), "deleted a frame the stream did not acknowledge"
        assert s.floor >= reported, "the floor moved backwards"
        reported = s.floor
        assert all(q in acked or q in dropped for q in range(1, s.floor + 1)), "the floor covers a waiting frame"
        assert len(s._in_flight) <= 5
    assert len(deleted) == len(set(deleted)), "a frame was deleted twice"
    assert set(deleted) == acked - dropped
