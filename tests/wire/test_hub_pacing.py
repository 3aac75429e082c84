"""HubSession's pacing without sockets: who is paced, at what rate, how often told, and how long each read waits."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from wire.codec import MIN_PACE, decode_hub, encode_edge
from wire.dedup import SeqTracker
from wire.hub_session import PACE_BURST, PACE_NOTICE_S, PACE_SHARE, TCP_BRAKE_MAX_S, HubSession
from wire.messages import Hello, Pace, Welcome

PACING = Hello(agent="edge-P", epoch=5, ward="P", beds=("P-1",), pace=True)


def welcomed(hello: Hello = PACING, counters: Counter[str] | None = None) -> HubSession[str]:
    s: HubSession[str] = HubSession(SeqTracker(), agent="edge-P", beds=("P-1",), max_frames_per_s=1e9, max_bytes_per_s=1e12,
                                    now=0.0, counters=counters)  # fmt: skip
    s.receive_data(encode_edge(hello))
    s.welcome(0)
    assert [decode_hub(d) for d in s.data_to_send()] == [Welcome(0)]
    return s


def paces(s: HubSession) -> list[float | None]:
    out = [decode_hub(d) for d in s.data_to_send()]
    assert all(isinstance(m, Pace) for m in out), out
    return [m.frames_per_s for m in out]


def test_an_agent_that_did_not_say_pace_keeps_the_whole_brake_up_to_its_cap_and_is_never_sent_a_pace() -> None:
    s = welcomed(Hello(agent="edge-P", epoch=5, ward="P", beds=("P-1",)))
    for i in range(10):
        assert s.brake(0.8, 10.0 + i) == 0.8
    assert s.brake(TCP_BRAKE_MAX_S * 3, 25.0) == TCP_BRAKE_MAX_S  # its pings wait behind its frames: no longer
    assert s.brake(0.0, 30.0) == 0.0
    assert paces(s) == [] and s.pace is None


def test_no_pace_before_the_hello() -> None:
    s: HubSession[str] = HubSession(SeqTracker(), agent="edge-P", beds=(), max_frames_per_s=1e9, max_bytes_per_s=1e12, now=0.0)
    assert s.brake(0.5, 1.0) == 0.5 and s.data_to_send() == []


def test_the_pace_is_a_share_of_the_read_rate_under_the_brake_and_lifted_when_it_ends() -> None:
    counters: Counter[str] = Counter()
    s = welcomed(counters=counters)
    assert s.brake(0.0, 1.0) == 0.0 and paces(s) == []  # not braked: nothing to say
    s.brake(0.5, 2.0)
    assert paces(s) == [pytest.approx(PACE_SHARE / 0.5)] and s.pace == pytest.approx(1.5)
    s.brake(0.0, 2.5)  # the brake ended, but the agent was told less than a second ago
    assert paces(s) == []
    s.brake(0.0, 3.0)
    assert paces(s) == [None] and s.pace is None
    assert counters["paces_sent"] == 2


def test_a_new_pace_only_for_a_change_of_a_quarter_and_at_most_once_a_second() -> None:
    s = welcomed()
    s.brake(0.5, 10.0)
    assert paces(s) == [1.5]
    s.brake(0.1, 10.5)  # 7.5 frames/s, but within the second
    assert paces(s) == []
    s.brake(0.55, 11.0)  # 1.364: less than 25 % off
    assert paces(s) == []
    s.brake(0.7, 11.1)  # 1.071: 29 % off
    assert paces(s) == [pytest.approx(0.75 / 0.7, abs=1e-3)]
    s.brake(0.7 / 1.26, 12.2)  # 26 % up
    assert paces(s) == [pytest.approx(0.75 * 1.26 / 0.7, abs=1e-3)]
    for t in (12.3, 12.5, 13.0, 13.2):  # the same brake: nothing new
        s.brake(0.7 / 1.26, t)
    assert paces(s) == []
    assert PACE_NOTICE_S == 1.0


def test_the_pace_is_bounded() -> None:
    s = welcomed()
    s.brake(1e6, 0.0)  # an absurd brake still gives a pace the codec accepts
    assert paces(s) == [MIN_PACE]


def test_a_paced_agent_is_read_at_once_while_it_keeps_to_its_pace_and_braked_beyond_the_burst() -> None:
    s = welcomed()
    brake = 0.5
    # keeping to its pace (one frame every brake / PACE_SHARE s): never waits
    t = 100.0
    for _ in range(20):
        assert s.brake(brake, t) == 0.0
        t += brake / PACE_SHARE
    # what its socket held before the pace reached it: the burst is read at once, the rest at the brake's rate
    waits = [s.brake(brake, t) for _ in range(int(PACE_BURST) + 3)]
    assert waits[: int(PACE_BURST)] == [0.0] * int(PACE_BURST)
    assert waits[int(PACE_BURST) :] == pytest.approx([brake, 2 * brake, 3 * brake])


def test_a_store_that_keeps_the_reader_waiting_paces_the_agent_until_the_wait_has_faded() -> None:
    s = welcomed()
    s.store_waited(0.02, 1.0)  # a short wait: the store keeps up
    assert s.brake(0.0, 1.1) == 0.0 and paces(s) == []
    s.store_waited(3.0, 2.0)  # three seconds for a slot in the store's queue
    assert s.brake(0.0, 2.0) == 0.0  # the reader waits no more than the store made it
    assert paces(s) == [pytest.approx(PACE_SHARE / 3.0)]
    s.store_waited(0.0, 2.5)  # a wait shorter than the one remembered does not erase it
    s.brake(0.0, 2.5)
    assert paces(s) == []  # and the agent was told less than a second ago
    s.brake(0.0, 3.1)  # 3 s * e^(-1.1 / 2) is about 1.73 s: a change of more than a quarter, told
    assert paces(s) == [pytest.approx(PACE_SHARE / (3.0 * math.exp(-1.1 / 2)), rel=1e-2)]
    for t in (6.0, 8.0, 10.0, 12.0, 14.0):
        s.brake(0.0, t)
    assert s.pace is None  # faded under STORE_SLOW_MIN_S: unpaced
    assert paces(s)[-1] is None


def test_an_agent_that_did_not_say_pace_is_not_paced_by_the_store_either() -> None:
    s = welcomed(Hello(agent="edge-P", epoch=5, ward="P", beds=("P-1",)))
    s.store_waited(5.0, 1.0)
    assert s.brake(0.0, 1.0) == 0.0 and paces(s) == []
