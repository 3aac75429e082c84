"""ingest.overload.OverloadDetector: overloaded on a sustained late loop, never on one slow moment; clears with hysteresis."""

from __future__ import annotations

from ingest.overload import CLEAR_S, ENTER_MS, EXIT_MS, MAX_BRAKE_S, PROBE_S, WINDOW_S, OverloadDetector


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
    t = feed(d, ENTER_MS + 50, 1.0, t)
    assert d.overloaded and d.episodes == 1
    assert d.brake_s() == 2 * (ENTER_MS + 50) / 1000 and "late" in (d.reason() or "")
    t = feed(d, 5000.0, WINDOW_S, t)
    assert d.brake_s() == MAX_BRAKE_S  # never more than this per frame, however late
    t = feed(d, EXIT_MS / 2, CLEAR_S, t)
    assert d.overloaded  # the median is calm after half a window, but not yet for CLEAR_S: no flapping
    t = feed(d, EXIT_MS / 2, WINDOW_S, t)
    assert not d.overloaded and d.brake_s() == 0 and d.reason() is None
    assert d.stats()["overload_peak_lag_ms"] == 5000.0 and d.stats()["overload_episodes"] == 1


def test_lag_between_the_thresholds_holds_the_verdict_either_way() -> None:
    between = (ENTER_MS + EXIT_MS) / 2
    calm, busy = OverloadDetector(), OverloadDetector()
    feed(calm, between, 30, 0.0)
    t = feed(busy, ENTER_MS * 2, WINDOW_S, 0.0)
    feed(busy, between, 30, t)
    assert not calm.overloaded and busy.overloaded
