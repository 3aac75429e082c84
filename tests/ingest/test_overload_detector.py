"""ingest.overload.OverloadDetector: overloaded on a sustained late loop, never on one slow moment; a brake that tightens
while the loop stays late and eases once it is on time; clears with hysteresis, once the brake is off."""

from __future__ import annotations

import math

import pytest

from ingest.overload import (
    BRAKE_DOWN_MS,
    BRAKE_EASE,
    BRAKE_FLOOR_S,
    BRAKE_GROWTH,
    BRAKE_UP_MS,
    CLEAR_S,
    ENTER_MS,
    EXIT_MS,
    MAX_BRAKE_S,
    PROBE_S,
    RECENT_S,
    WINDOW_S,
    OverloadDetector,
)


def feed(d: OverloadDetector, lag_ms: float, seconds: float, t: float) -> float:
    """Probes every PROBE_S for ``seconds`` from ``t``; returns the time after the last."""
    for _ in range(round(seconds / PROBE_S)):
        t += PROBE_S
        d.observe(lag_ms, t)
    return t


def test_a_hub_that_keeps_up_is_not_overloaded_and_is_not_braked() -> None:
    d = OverloadDetector()
    feed(d, 3.0, 60, 0.0)
    assert not d.overloaded and d.brake_s() == 0 and d.reason() is None and d.episodes == 0


def test_one_slow_second_is_not_overload() -> None:
    d = OverloadDetector()
    t = feed(d, 2.0, 10, 0.0)
    t = feed(d, 900.0, 1.0, t)  # a garbage collection, a burst of reconnecting agents
    feed(d, 2.0, 10, t)
    assert not d.overloaded and d.episodes == 0


def test_a_late_loop_sustained_is_overload_with_a_bounded_brake_then_clears_after_calm() -> None:
    d = OverloadDetector()
    t = feed(d, ENTER_MS + 50, WINDOW_S / 2 - PROBE_S, 0.0)
    assert not d.overloaded  # not before half a window of evidence
    for _ in range(10):
        t = feed(d, ENTER_MS + 50, PROBE_S, t)
        if d.overloaded:
            break
    assert d.overloaded and d.episodes == 1
    assert d.brake_s() == 2 * (ENTER_MS + 50) / 1000 and "late" in (d.reason() or "")  # where it starts
    t = feed(d, 5000.0, 3 * WINDOW_S, t)
    assert d.brake_s() == MAX_BRAKE_S  # never more than this per frame, however late
    t = feed(d, EXIT_MS / 2, CLEAR_S + WINDOW_S, t)
    assert d.overloaded and BRAKE_FLOOR_S < d.brake_s() < MAX_BRAKE_S / 4  # easing, not yet off: no flapping
    easing = math.log(BRAKE_FLOOR_S / MAX_BRAKE_S) / math.log(BRAKE_EASE)
    t = feed(d, EXIT_MS / 2, easing + RECENT_S - CLEAR_S - WINDOW_S, t)  # the last second turns calm within RECENT_S
    assert not d.overloaded and d.brake_s() == 0 and d.reason() is None
    assert d.stats()["overload_peak_lag_ms"] == 5000.0 and d.stats()["overload_episodes"] == 1


def test_the_brake_tightens_while_the_loop_stays_late_holds_between_and_eases_once_on_time() -> None:
    """A brake fixed by the lag settles where the hub still takes in too much; this one keeps tightening until the
    loop is on time again, holds while the lag is in the band, and eases below it."""
    d = OverloadDetector()
    t = feed(d, ENTER_MS, WINDOW_S / 2 + PROBE_S, 0.0)
    assert d.overloaded
    start = d.brake_s()
    t = feed(d, BRAKE_UP_MS, 1.0, t)  # late, if less so than on entering
    assert d.brake_s() == pytest.approx(start * BRAKE_GROWTH, rel=0.01)
    t = feed(d, (BRAKE_UP_MS + BRAKE_DOWN_MS) / 2, RECENT_S, t)  # the last second has reached the band
    held = d.brake_s()
    t = feed(d, (BRAKE_UP_MS + BRAKE_DOWN_MS) / 2, 5.0, t)
    assert d.brake_s() == held
    t = feed(d, BRAKE_DOWN_MS - 1, RECENT_S, t)
    eased = d.brake_s()
    feed(d, BRAKE_DOWN_MS - 1, 1.0, t)
    assert eased < held and d.brake_s() == pytest.approx(eased * BRAKE_EASE, rel=0.01) and d.overloaded


def test_lag_between_the_thresholds_holds_the_verdict_either_way() -> None:
    between = (ENTER_MS + EXIT_MS) / 2
    calm, busy = OverloadDetector(), OverloadDetector()
    feed(calm, between, 30, 0.0)
    t = feed(busy, ENTER_MS * 2, WINDOW_S, 0.0)
    feed(busy, between, 30, t)
    assert not calm.overloaded and busy.overloaded
