"""The console relay's wire contract: subjects, and replies and confirmations parsed with a limit or refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.console_relay_contract import (
    MAX_DELIVERED_BYTES,
    MAX_SNAPSHOT_BYTES,
    ActionResult,
    AlarmAction,
    ChartedValue,
    RelayContractError,
    WardSnapshot,
    check_chunk,
    encode_delivered,
    encode_moved,
    live_headers,
    name_of,
    parse_action,
    parse_charted,
    parse_delivered,
    parse_moved,
    parse_result,
    parse_snapshot,
    parse_want,
    subject,
    wildcard,
)
from ingest.wave_feed import encode_chunk
from wire.jetstream_contract import JetStreamContractError, overlaps
from wire.messages import WaveChunk


def test_subjects_name_their_kind_and_ward_and_are_read_back() -> None:
    assert subject("teleicu.console", "live", "ICU-1") == "teleicu.console.live.ICU-1"
    assert wildcard("teleicu.console", "snapshot") == "teleicu.console.snapshot.*"
    assert name_of("teleicu.console", "live", "teleicu.console.live.ICU-1") == "ICU-1"
    with pytest.raises(JetStreamContractError):
        subject("teleicu.console", "live", "ICU 1")
    for bad in ("teleicu.console.live", "teleicu.console.live.A.B", "teleicu.console.hub.A", "other.live.A"):
        with pytest.raises(RelayContractError):
            name_of("teleicu.console", "live", bad)


def test_prefixes_overlap_when_one_lies_within_the_other() -> None:
    assert overlaps("teleicu", "teleicu.frames") and overlaps("teleicu.frames", "teleicu.frames")
    assert not overlaps("teleicu.console", "teleicu.frames") and not overlaps("teleicu.fr", "teleicu.frames")


def test_an_alarm_event_carries_its_id_and_event_in_headers() -> None:
    assert live_headers("w1", {"type": "beds", "beds": []}) == {"Teleicu-Worker": "w1"}
    h = live_headers("w1", {"type": "alert", "event": "resolved", "alert": {"id": "a-1"}})
    assert h == {"Teleicu-Worker": "w1", "Teleicu-Alert": "a-1", "Teleicu-Event": "resolved"}


def test_a_snapshot_round_trips_and_one_naming_another_ward_or_too_large_is_refused() -> None:
    snap = WardSnapshot([{"bed": "A-1", "ward": "A"}], [{"id": "x", "ward": "A"}])
    assert parse_snapshot(snap.encode(), "A") == snap
    with pytest.raises(RelayContractError, match="another ward"):
        parse_snapshot(snap.encode(), "B")
    with pytest.raises(RelayContractError, match="limit"):
        parse_snapshot(b" " * (MAX_SNAPSHOT_BYTES + 1), "A")
    with pytest.raises(RelayContractError, match="lists beds and alerts"):
        parse_snapshot(b'{"beds": {}}', "A")


def test_delivered_ids_round_trip_and_anything_else_is_refused() -> None:
    assert parse_delivered(encode_delivered(["a", "b"])) == ["a", "b"]
    for bad in (b'{"a": 1}', b"[1]", b"nope", b"[" + b'"x",' * 10_000 + b'"x"]'):
        with pytest.raises(RelayContractError):
            parse_delivered(bad)
    with pytest.raises(RelayContractError, match="limit"):
        parse_delivered(b" " * (MAX_DELIVERED_BYTES + 1))


def test_an_alarm_action_and_its_result_round_trip_and_malformed_ones_are_refused() -> None:
    silence = AlarmAction("silence", "a-1", "Meena", "turning the patient", 120.0)
    assert parse_action(silence.encode()) == silence
    assert parse_result(ActionResult({"id": "a-1"}).encode()) == ActionResult({"id": "a-1"})
    assert parse_result(ActionResult(status=409, detail="resolved").encode()) == ActionResult(None, 409, "resolved")
    for bad in (b'{"op": "resolve", "id": "a", "by": "b", "reason": "", "seconds": 0}',
                b'{"op": "ack", "id": 1, "by": "b", "reason": "", "seconds": 0}',
                b'{"op": "ack", "id": "a", "by": "b", "reason": "", "seconds": true}'):  # fmt: skip
        with pytest.raises(RelayContractError):
            parse_action(bad)
    with pytest.raises(RelayContractError, match="carries the alarm"):
        parse_result(b'{"status": 200, "detail": "", "alert": null}')


def test_a_patients_move_round_trips_and_one_naming_no_bed_or_too_long_a_name_is_refused() -> None:
    assert parse_moved(encode_moved("A1-01", "B1-02", "B1")) == ("A1-01", "B1-02", "B1")
    assert parse_moved(encode_moved(None, "B1-02", "B1")) == (None, "B1-02", "B1")
    assert parse_moved(encode_moved("A1-01", None, None)) == ("A1-01", None, None)
    for bad in (encode_moved(None, None, "B1"), encode_moved("x" * 201, None, None), b'{"from_bed": 7}', b"[]", b"{" * 5000):
        with pytest.raises(RelayContractError):
            parse_moved(bad)
    assert subject("t.c", "moved", "A1") == "t.c.moved.A1"


def test_a_charted_value_round_trips_and_a_malformed_one_is_refused() -> None:
    v = ChartedValue("A1-01", "o2", 1.0, 1_800_000_000_000, "meena")
    assert parse_charted(v.encode()) == v
    for bad in (b'{"bed": "A1-01", "param": "o2", "value": true, "t": 1, "by": "m"}', b'{"bed": "A1-01", "param": "o2", "value": 1, "t": 1.5, "by": "m"}',
                b'{"bed": "", "param": "o2", "value": 1, "t": 1, "by": "m"}', b"[1]", b"x" * 5000):  # fmt: skip
        with pytest.raises(RelayContractError):
            parse_charted(bad)


def test_a_waveform_want_names_a_bed_and_a_relayed_chunk_is_a_whole_wave_feed_message() -> None:
    assert parse_want("A1-01".encode()) == "A1-01"
    for bad in (b"", b"\xff\xfe", ("x" * 201).encode()):
        with pytest.raises(RelayContractError):
            parse_want(bad)
    data = encode_chunk(WaveChunk(1, "A1-01", "ecg_ii", 1_800_000_000_000, 250, 0.005, (1, -2, 3)))
    assert check_chunk(data, "A1-01") == "A1-01"
    for chunk, bed in ((data, None), (data[:-1], "A1-01"), (b"\x02" + data[1:], "A1-01"), (data + b"\0" * (1 << 20), "A1-01")):
        with pytest.raises(RelayContractError):
            check_chunk(chunk, bed)


@given(st.binary(max_size=2048) | st.builds(lambda v: json.dumps(v).encode(), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["beds", "alerts", "ward", "id", "op", "by", "reason", "seconds", "status", "detail", "alert", "from_bed", "to_bed", "to_ward", "bed", "param", "value", "t"]), inner, max_size=4),
    max_leaves=20)))  # fmt: skip
def test_any_bytes_give_a_snapshot_and_ids_or_the_documented_error(data: bytes) -> None:
    for parse in (lambda d: parse_snapshot(d, "A"), parse_delivered, parse_action, parse_result, parse_moved, parse_charted, parse_want, lambda d: check_chunk(d, "A-01")):
        try:
            parse(data)
        except RelayContractError:
            pass
