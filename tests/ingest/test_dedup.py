"""Sequence tracking for deduplication."""

from ingest.dedup import SeqTracker


def test_new_duplicate_and_rewind() -> None:
    t = SeqTracker({("a", 1): 3})
    assert not t.is_new("a", 1, 3) and t.is_new("a", 1, 4) and t.is_new("a", 2, 1)
    t.accept("a", 1, 4)
    t.accept("a", 1, 5)
    t.stored("a", 1, 4)
    assert not t.is_new("a", 1, 5)
    t.rewind("a", 1)  # frame 5 was taken in but never stored: let the re-sent copy in
    assert t.is_new("a", 1, 5) and not t.is_new("a", 1, 4)
    assert t.last_durable("a", 1) == 4
