"""HubSession without sockets: hello/welcome, refusals, acknowledgements, the store hold, rate limiting."""

from __future__ import annotations

import json

import pytest

from wire.codec import decode_hub, encode_edge
from wire.dedup import SeqTracker
from wire.hub_session import (
    ACK_EVERY,
    CLOSE_POLICY,
    CLOSE_STORE_RECOVERED,
    HOLD_RETRY_S,
    MAX_THROTTLE_S,
    FrameReceived,
    FrameRefused,
    HelloReceived,
    HubSession,
    StatusReceived,
)
from wire.messages import Ack, ErrorReport, Hello, ObsFrame, Observation, Status, Welcome

HELLO = Hello(agent="edge-T", epoch=5, ward="T", beds=("T-1",))


def new(seqs: SeqTracker | None = None, **kw) -> HubSession[str]:
    args = {"agent": "edge-T", "beds": ("T-1",), "max_frames_per_s": 1e9, "max_bytes_per_s": 1e12, "now": 0.0} | kw
    return HubSession(seqs if seqs is not None else SeqTracker(), **args)


def frame(seq: int) -> bytes:
    return encode_edge(ObsFrame(seq, (Observation("T-1", "hr", 70.0, 1000 + seq, 1000 + seq, "m"),)))


def sent(s: HubSession) -> list:
    return [decode_hub(d) for d in s.data_to_send()]


def welcomed(seqs: SeqTracker | None = None, **kw) -> HubSession[str]:
    s = new(seqs, **kw)
    assert s.receive_data(encode_edge(HELLO)) == [HelloReceived(HELLO)]
    s.welcome(0)
    assert sent(s) == [Welcome(0)]
    return s


def test_hello_then_data_and_status() -> None:
    s = welcomed()
    [ev] = s.receive_data(frame(1))
    assert isinstance(ev, FrameReceived) and ev.frame.seq == 1
    status = Status(spool={"frames": 3, "floor": 2})
    assert s.receive_data(encode_edge(status)) == [StatusReceived(status)]
    assert s.data_to_send() == []


@pytest.mark.parametrize(
    ("first", "detail"),
    [(frame(1), "send hello before data frames"), (encode_edge(Status()), "send hello before status")],
)
def test_data_or_status_before_hello_is_refused_and_the_connection_stays(first: bytes, detail: str) -> None:
    s = new()
    assert s.receive_data(first) == [FrameRefused(None)]
    [err] = sent(s)
    assert isinstance(err, ErrorReport) and err.code == "protocol" and err.detail == detail
    assert s.receive_data(encode_edge(HELLO)) == [HelloReceived(HELLO)] and s.close_code is None


def test_a_second_hello_is_refused() -> None:
    s = welcomed()
    assert s.receive_data(encode_edge(HELLO)) == [FrameRefused(None)]
    [err] = sent(s)
    assert err.code == "protocol" and "already" in err.detail and s.hello == HELLO


def test_a_hello_naming_another_agent_closes_the_connection() -> None:
    s = new(agent="edge-ok")  # the connection authenticated as edge-ok
    assert s.receive_data(encode_edge(HELLO)) == []
    [err] = sent(s)
    assert err.code == "protocol" and "edge-ok" in err.detail and s.close_code == CLOSE_POLICY
    assert s.counters["hello_for_another_agent"] == 1
    assert s.hello is None and s.receive_data(frame(1)) == []  # nothing more is read


def test_the_hello_registered_carries_the_agents_registered_beds() -> None:
    s = new(beds=("T-2", "T-1"))
    hello = Hello(agent="edge-T", epoch=5, ward="T", beds=("T-1", "T-9"))
    [ev] = s.receive_data(encode_edge(hello))
    assert ev == HelloReceived(Hello(agent="edge-T", epoch=5, ward="T", beds=("T-1", "T-2")), ("T-9",))
    assert sent(s) == []  # the welcome comes first: an agent waits for it before anything else
    s.welcome(0)
    welcome, err = sent(s)
    assert isinstance(welcome, Welcome) and err.code == "unregistered_beds" and "T-9" in err.detail and s.close_code is None


def test_undecodable_frames_are_refused_and_settled_only_when_their_number_is_known() -> None:
    s = welcomed()
    assert s.receive_data(b"{not json") == [FrameRefused(None)]
    assert s.receive_data(json.dumps({"type": "obs", "seq": 9, "obs": [{"bed": "T-1"}]})) == [FrameRefused(9)]
    errors = sent(s)
    assert [e.code for e in errors] == ["malformed", "schema"] and errors[1].seq == 9
    before_hello = new()
    assert before_hello.receive_data(json.dumps({"type": "obs", "seq": 9, "obs": [{}]})) == [FrameRefused(None)]


def test_rejected_values_are_reported_with_the_frame_number() -> None:
    s = welcomed()
    assert s.frame_taken(3, "batch-3", [{"index": 0, "reason": "implausible"}], storable=True, store_error=None)
    [err] = sent(s)
    assert err == ErrorReport("rejected", "1 value(s) rejected, the rest of the frame was kept", 3, ({"index": 0, "reason": "implausible"},))


def test_acknowledgements_carry_the_durable_watermark_and_frames_above_it() -> None:
    seqs = SeqTracker({("edge-T", 5): 10})
    s = welcomed(seqs)
    for seq in (14, 12):  # live frames ahead of the backlog
        seqs.stored("edge-T", 5, seq)
        s.frame_handled(seq, idle=False)
    assert s.data_to_send() == []  # more verdicts pending: wait
    seqs.stored("edge-T", 5, 11)
    s.frame_handled(11, idle=True)
    assert sent(s) == [Ack(12, (14,))]


def test_under_load_every_ack_every_frames_are_acknowledged() -> None:
    seqs = SeqTracker()
    s = welcomed(seqs)
    for seq in range(1, 2 * ACK_EVERY + 1):
        seqs.stored("edge-T", 5, seq)
        s.frame_handled(seq, idle=False)
    assert sent(s) == [Ack(ACK_EVERY), Ack(2 * ACK_EVERY)]


def test_a_store_reporting_an_error_starts_a_hold() -> None:
    seqs = SeqTracker()
    s = welcomed(seqs)
    assert s.frame_taken(1, "b1", [], storable=True, store_error=None)  # submitted before the hold
    assert not s.frame_taken(2, None, [], storable=False, store_error="disk full")  # a duplicate: nothing to hold
    assert not s.frame_taken(3, "b3", [], storable=True, store_error="disk full")
    assert not s.frame_taken(4, "b4", [], storable=True, store_error=None)
    [err] = sent(s)
    assert err.code == "store_unavailable" and "disk full" in err.detail  # told once
    assert s.holding and s.held_batch == "b3"
    assert s.counters["store_holds"] == 1 and s.counters["frames_held_unstored"] == 3
    assert s.receive_data(json.dumps({"type": "obs", "seq": 9, "obs": [{}]})) == [FrameRefused(None)]  # not settled now
    sent(s)
    seqs.stored("edge-T", 5, 1)
    s.frame_handled(1, idle=False)
    s.hold_drained()  # what was submitted before the hold is acknowledged, nothing after
    assert sent(s) == [Ack(1)]
    assert s.retry_delay == HOLD_RETRY_S[0]
    assert s.retry_tick("disk full") == "b3"
    for _ in range(5):
        s.retry_failed()
    assert s.retry_delay == HOLD_RETRY_S[1] and s.close_code is None
    assert s.retry_tick(None) == "b3"
    s.store_recovered()
    assert s.close_code == CLOSE_STORE_RECOVERED


def test_a_failed_write_starts_a_hold_on_its_batch() -> None:
    s = welcomed()
    s.store_failed("b7", None)
    [err] = sent(s)
    assert err.code == "store_unavailable" and "a write failed" in err.detail
    s.store_failed("b8", "still failing")
    assert s.held_batch == "b7" and s.counters["store_holds"] == 1 and s.data_to_send() == []


def test_a_hold_without_data_ends_when_the_store_reports_no_error() -> None:
    s = welcomed()
    assert not s.frame_taken(1, None, [], storable=False, store_error="InfluxDB down")
    s.hold_drained()
    assert s.retry_tick("InfluxDB down") is None and s.close_code is None
    assert s.retry_tick(None) is None and s.close_code == CLOSE_STORE_RECOVERED


def test_a_fast_agent_is_read_more_slowly_and_told_once_a_second() -> None:
    s = welcomed(max_frames_per_s=10, max_bytes_per_s=1e9)
    waits = [s.throttle(100, 0.0) for _ in range(12)]
    assert waits[:10] == [0.0] * 10 and waits[10] == pytest.approx(0.1) and waits[11] == pytest.approx(0.2)
    notices = sent(s)
    assert [n.code for n in notices] == ["rate_limited"] and "nothing dropped" in notices[0].detail
    assert s.counters["rate_limited_waits"] == 2
    assert s.throttle(100, 0.05) > 0 and s.data_to_send() == []  # within the second: not told again
    assert [s.throttle(100, 1.0) for _ in range(10)][-1] > 0 and [n.code for n in sent(s)] == ["rate_limited"]
    big = welcomed(max_frames_per_s=1e9, max_bytes_per_s=1000)
    assert big.throttle(100_000, 0.0) == MAX_THROTTLE_S
