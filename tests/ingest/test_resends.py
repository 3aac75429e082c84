"""Telling a device's re-send of a stored sample from a new one (``ingest.resends``), live and late."""

from __future__ import annotations

from ingest.resends import EARLIER, LastStored
from wire.messages import Observation


def nibp(value: float, t: int) -> Observation:
    return Observation("A-01", "nibp_sys", value, t, t + 30, "mon")


def test_a_re_send_of_the_latest_stored_sample_is_told_apart_and_a_new_value_is_not() -> None:
    last = LastStored()
    assert last.stored([nibp(120.0, 1_000)]) == (1, 0)
    assert last.is_resend(nibp(120.0, 1_000))
    assert not last.is_resend(nibp(121.0, 1_000))  # a corrected value at the same time is stored
    assert last.stored([nibp(120.0, 1_000), nibp(120.0, 1_000)]) == (0, 2)


def test_a_late_re_send_of_a_reading_a_newer_one_displaced_is_still_a_re_send() -> None:
    """A paced agent's backlog carries the monitor's re-sends of an earlier cuff reading after the newer reading
    was stored: they are not counted as new samples (nor stored again)."""
    last = LastStored()
    assert last.stored([nibp(120.0, 1_000), nibp(120.0, 1_000)]) == (1, 1)  # the monitor re-sends each second
    assert last.stored([nibp(131.0, 300_000)]) == (1, 0)  # the next cuff cycle, sent first (newest first)
    late = [nibp(120.0, 1_000)] * 4  # the backlog's frames, each with the earlier reading's re-send
    assert all(last.is_resend(o) for o in late)
    assert last.stored(late) == (0, 4)
    assert not last.is_resend(nibp(120.0, 2_000))  # the same value at another time is a new sample


def test_only_the_last_few_displaced_readings_are_kept_and_only_for_re_sending_series() -> None:
    last = LastStored()
    last.stored([nibp(100.0, 0), nibp(100.0, 0)])
    for i in range(1, EARLIER + 2):
        last.stored([nibp(100.0 + i, i * 1_000)])
    assert not last.is_resend(nibp(100.0, 0))  # displaced EARLIER + 1 readings ago: forgotten (costs a re-write)
    assert all(last.is_resend(nibp(100.0 + i, i * 1_000)) for i in range(2, EARLIER + 2))
    hr = LastStored()
    hr.stored([Observation("A-01", "hr", 80.0, 1_000, 1_030), Observation("A-01", "hr", 81.0, 2_000, 2_030)])
    assert not hr.is_resend(Observation("A-01", "hr", 80.0, 1_000, 1_030))  # never re-sent: displaced readings not kept
