"""Sequence tracking for deduplication, in order and out of order."""

from hypothesis import given
from hypothesis import strategies as st

from ingest.dedup import SeqTracker


def test_only_durable_frames_are_duplicates() -> None:
    t = SeqTracker({("a", 1): 3})
    assert not t.is_new("a", 1, 3) and t.is_new("a", 1, 4) and t.is_new("a", 2, 1)
    t.stored("a", 1, 4)
    # frame 5 was taken in on a connection that stalled, but is not stored yet: a re-sent copy is new
    assert t.is_new("a", 1, 5) and not t.is_new("a", 1, 4)
    assert t.last_durable("a", 1) == 4


def test_live_first_then_backlog() -> None:
    t = SeqTracker({("a", 1): 10})
    for seq in (20, 21, 22):  # live frames after an outage
        assert t.is_new("a", 1, seq)
        t.stored("a", 1, seq)
    assert t.last_durable("a", 1) == 10 and t.durable_above("a", 1) == {20, 21, 22}
    for seq in range(11, 20):  # the backlog fills the gap
        t.stored("a", 1, seq)
    assert t.last_durable("a", 1) == 22 and t.durable_above("a", 1) == set()
    assert not any(t.is_new("a", 1, s) for s in range(1, 23))


@given(st.permutations(list(range(1, 60))))
def test_any_order_ends_contiguous_and_rejects_repeats(order: list[int]) -> None:
    t = SeqTracker()
    for seq in order:
        assert t.is_new("a", 1, seq)
        t.stored("a", 1, seq)
        assert not t.is_new("a", 1, seq)
    assert t.last_durable("a", 1) == 59 and not t.durable_above("a", 1)


def test_the_agents_floor_closes_gaps_that_will_never_fill() -> None:
    # a restarted hub persisted watermark 995, but the agent had 996..999 acknowledged (and deleted) before
    t = SeqTracker({("a", 1): 995})
    t.stored("a", 1, 1000)
    assert t.last_durable("a", 1) == 995
    t.raise_floor("a", 1, 999)  # from the agent's hello: nothing up to 999 will come again
    assert t.last_durable("a", 1) == 1000 and not t.durable_above("a", 1)
    t.raise_floor("a", 1, 10)  # a lower floor changes nothing
    assert t.last_durable("a", 1) == 1000
