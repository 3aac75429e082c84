"""The JetStream frame contract: subjects, message ids and headers round-trip, and every disagreement is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.jetstream_contract import (FLOOR, MSG_ID, FrameKey, JetStreamContractError, frame_headers, frame_subject,
                                     parse_frame_headers, parse_status_headers, status_filter, status_headers, status_subject,
                                     stream_subjects, ward_filter)  # fmt: skip

TOKENS = st.text("abcXYZ019-_", min_size=1, max_size=64)
INTS = st.integers(0, 2**63 - 1)


@given(TOKENS, TOKENS, INTS, INTS, INTS)
def test_a_key_round_trips_through_subject_and_headers(ward: str, agent: str, epoch: int, seq: int, floor: int) -> None:
    key = FrameKey(ward, agent, epoch, seq, floor)
    assert parse_frame_headers(frame_subject(ward, agent), frame_headers(key)) == key
    assert frame_headers(key)[MSG_ID] == f"{agent}:{epoch}:{seq}"


def test_filters_and_subjects() -> None:
    assert frame_subject("ICU-A", "gw_1") == "teleicu.frames.ICU-A.gw_1"
    assert ward_filter("ICU-A") == "teleicu.frames.ICU-A.>"
    assert stream_subjects("h1.frames") == ["h1.frames.>"]


@pytest.mark.parametrize("bad", ["", "a.b", "a*", ">", "a b", "é", "x" * 65])
def test_ids_that_cannot_be_tokens_are_refused(bad: str) -> None:
    with pytest.raises(JetStreamContractError):
        frame_subject(bad, "gw")
    with pytest.raises(JetStreamContractError):
        frame_subject("ward", bad)


def test_a_frame_that_disagrees_with_itself_is_refused() -> None:
    good = frame_headers(FrameKey("W", "gw", 5, 7, 3))
    for subject, headers in [
        ("teleicu.frames.W.other", good),  # the subject names another agent
        ("teleicu.frames.W", good),
        ("teleicu.frames.W.gw.x", good),
        ("other.W.gw", good),
        ("teleicu.frames.W.gw", {**good, MSG_ID: "gw:5:8"}),  # the stream would deduplicate on another key
        ("teleicu.frames.W.gw", {**good, FLOOR: "-1"}),
        ("teleicu.frames.W.gw", {**good, FLOOR: "9" * 20}),
        ("teleicu.frames.W.gw", {**good, FLOOR: "١"}),  # a digit, but not ASCII
        ("teleicu.frames.W.gw", None),
    ]:
        with pytest.raises(JetStreamContractError):
            parse_frame_headers(subject, headers)


@given(TOKENS, TOKENS, INTS)
def test_a_status_report_names_its_agent_and_epoch_and_one_that_disagrees_is_refused(ward: str, agent: str, epoch: int) -> None:
    subject = status_subject(ward, agent, "t.status")
    assert subject == f"t.status.{ward}.{agent}" and status_filter(ward, "t.status") == f"t.status.{ward}.*"
    assert parse_status_headers(subject, status_headers(agent, epoch), "t.status") == (ward, agent, epoch)
    with pytest.raises(JetStreamContractError):
        parse_status_headers(subject, status_headers(agent + "x", epoch), "t.status")
    with pytest.raises(JetStreamContractError):
        parse_status_headers(subject, {"Teleicu-Agent": agent}, "t.status")
    with pytest.raises(JetStreamContractError):
        parse_status_headers(f"t.status.{ward}", status_headers(agent, epoch), "t.status")
