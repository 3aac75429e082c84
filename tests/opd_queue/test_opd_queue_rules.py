"""The queue's sans-I/O rules: order of calling, service day, wait estimate, statistics, rate limiter."""

from __future__ import annotations

import pytest
from opd_queue_support import ist_ms

from records_bridge.services.queue import rules
from records_bridge.services.ratelimit import RateLimiter


def test_priority_before_booked_before_walk_in_then_place_then_number() -> None:
    w = [rules.Waiting(1, "walk_in", 100, 1), rules.Waiting(2, "booked", 300, 2), rules.Waiting(3, "priority", 400, 3),
         rules.Waiting(4, "walk_in", 50, 4)]  # 4: transferred in, it joined its first queue before 1 did
    assert [x.token_id for x in rules.in_call_order(w)] == [3, 2, 4, 1]
    with pytest.raises(rules.RuleError):
        rules.call_key("vip", 0, 1)


def test_the_service_day_is_the_facilitys_not_utcs() -> None:
    assert str(rules.service_day(ist_ms(2024, 5, 1, 23, 59, 59), "Asia/Kolkata")) == "2024-05-01"
    assert str(rules.service_day(ist_ms(2024, 5, 2, 0, 0, 0), "Asia/Kolkata")) == "2024-05-02"
    assert str(rules.service_day(ist_ms(2024, 5, 2, 0, 30), "UTC")) == "2024-05-01"  # 19:00 UTC the day before
    with pytest.raises(rules.RuleError):
        rules.zone("Mars/Olympus")


def test_wait_estimate_is_position_times_the_recent_call_interval() -> None:
    now = 10_000_000
    assert rules.call_interval_s([], now, 240) == 240  # no calls yet: the queue's default
    assert rules.call_interval_s([now - 1000], now, 240) == 240
    assert rules.call_interval_s([now - 600_000, now - 300_000, now], now) == 300
    old = [now - rules.WINDOW_MS - 1]  # outside the window: ignored
    assert rules.call_interval_s(old + [now - 120_000, now], now) == 120
    many = [now - i * 60_000 for i in range(30)]  # only the last WINDOW_CALLS count
    assert rules.call_interval_s(many, now) == 60
    assert rules.estimate_wait_s(3, 120.4) == 361


def test_day_figures_count_each_token_once_and_measure_the_estimates() -> None:
    toks = [("completed", 100, 120), ("completed", 300, 200), ("no_show", 50, 50), ("waiting", None, 400),
            ("transferred", None, 999), ("called", 200, 100)]
    f = rules.day_figures(toks)
    assert (f.issued, f.served, f.called, f.no_shows, f.waiting) == (5, 2, 4, 1, 1)
    assert f.mean_wait_s == 162.5 and f.p90_wait_s == 300
    assert f.estimate_mae_s == (20 + 100 + 0 + 100) / 4 and f.estimate_bias_s == (20 - 100 + 0 - 100) / 4
    empty = rules.day_figures([])
    assert empty.mean_wait_s is None and empty.p90_wait_s is None and empty.estimate_mae_s is None
    assert rules.percentile(list(range(1, 11)), 90) == 9


def test_reminders_and_display_numbers() -> None:
    assert rules.reminder_due(3, 2) and not rules.reminder_due(4, 2) and not rules.reminder_due(1, 0)
    assert rules.display_number("MED", 7) == "MED-007" and rules.display_number("", 12) == "012"


def test_rate_limiter_refills_and_forgets_the_oldest_keys() -> None:
    lim = RateLimiter(per_minute=6, burst=2, max_keys=3)
    assert lim.allow("a", 0) and lim.allow("a", 0) and not lim.allow("a", 0)
    assert lim.retry_after_s("a") == 10
    assert not lim.allow("a", 9_000) and lim.allow("a", 20_000)
    for k in "bcd":
        lim.allow(k, 20_000)
    assert len(lim._buckets) == 3 and "a" not in lim._buckets


def test_a_token_booked_ahead_waits_from_its_slot_or_its_day_not_from_the_booking() -> None:
    booked_at = ist_ms(2024, 5, 1, 15)
    assert rules.wait_start_ms(booked_at, "2024-05-08", "10:30", "Asia/Kolkata") == ist_ms(2024, 5, 8, 10, 30)
    assert rules.wait_start_ms(booked_at, "2024-05-08", None, "Asia/Kolkata") == ist_ms(2024, 5, 8, 0, 0)
    walk_in = ist_ms(2024, 5, 8, 9, 12)  # issued on its own day: from when it was issued, slot or not
    assert rules.wait_start_ms(walk_in, "2024-05-08", None, "Asia/Kolkata") == walk_in
    assert rules.wait_start_ms(walk_in, "2024-05-08", "10:30", "Asia/Kolkata") == walk_in
