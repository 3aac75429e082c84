"""Agents' floors from JetStream headers wait for the consumer's ack floor to pass the frame that carried them."""

from __future__ import annotations

from ingest.stream_floors import StreamFloors


def test_a_floor_waits_until_the_ack_floor_reaches_its_frame() -> None:
    floors = StreamFloors()
    floors.seen("edge-A", 1, floor=9, stream_seq=120)
    assert floors.settled(119) == []  # frames 1..9 of edge-A may still be in flight or due again
    assert floors.settled(120) == [("edge-A", 1, 9)]
    assert floors.settled(500) == []
    assert len(floors) == 0


def test_the_newest_floor_waits_behind_the_first_and_a_passed_one_says_all() -> None:
    floors = StreamFloors()
    floors.seen("edge-A", 1, floor=5, stream_seq=10)
    floors.seen("edge-A", 1, floor=7, stream_seq=20)
    floors.seen("edge-A", 1, floor=6, stream_seq=15)  # lower than the newest: adds nothing
    assert floors.settled(12) == [("edge-A", 1, 5)]
    assert floors.settled(19) == []
    assert floors.settled(20) == [("edge-A", 1, 7)]
    floors.seen("edge-A", 1, floor=8, stream_seq=30)
    floors.seen("edge-A", 1, floor=9, stream_seq=40)
    assert floors.settled(45) == [("edge-A", 1, 9)]


def test_each_agent_and_epoch_waits_apart_and_a_zero_floor_is_nothing() -> None:
    floors = StreamFloors()
    floors.seen("edge-A", 1, floor=0, stream_seq=3)
    floors.seen("edge-A", 2, floor=4, stream_seq=8)
    floors.seen("edge-B", 1, floor=2, stream_seq=5)
    assert sorted(floors.settled(6)) == [("edge-B", 1, 2)]
    assert floors.settled(8) == [("edge-A", 2, 4)]
