"""Knowing when the hub is past its capacity, and what it does then: a technical alarm and a brake on intake.

The measure is the event loop's lag: how late a 100 ms timer fires. A hub that
keeps up fires it within a few ms; one past its capacity (more frames than one
core decodes, a store writer holding the GIL) fires it later and later, and
without a brake every queue between the agents and the consoles grows.

``OverloadDetector`` (no I/O; fed lag samples with their times) calls the hub
overloaded when the median lag over the last ``WINDOW_S`` reaches ``ENTER_MS``,
and calls it recovered only when the median has stayed under ``EXIT_MS`` for
``CLEAR_S`` (hysteresis: no flapping). While overloaded:

- ``brake_s()`` is the time the hub gives each agent per frame. It starts
  at twice the median lag, then is steered by the lag of the last second
  (``RECENT_S``): it grows by ``BRAKE_GROWTH`` a second while that lag is
  ``BRAKE_UP_MS`` or more, eases by ``BRAKE_EASE`` a second while it is under
  ``BRAKE_DOWN_MS``, and holds between, never above ``MAX_BRAKE_S``. A
  brake fixed by the lag alone settled where the hub still took in more than
  it could do (at 4,000 beds the loop ran later and later: a median lag of
  160 ms, then 980 ms, the consoles' p99 1.5 s, then 2.6 s); one that keeps
  tightening while the loop is late finds the rate the hub can do. An agent that understands pacing is
  told to send at most about one frame per brake (``wire.hub_session``: a
  ``Pace`` message) and keeps the rest in its spool, newest numerics first; any
  other agent's reader waits the brake before it reads its next frame, which
  is TCP backpressure: the data stays at the agent, but so do its keepalive
  pings, behind the frames in the socket (at 3,000 beds they waited more than
  20 s and the agents cut their own connections). Either way nothing is
  dropped, the loop gets its time back for the tick, the alarms and the
  consoles, and the brake eases as the lag falls. The verdict clears only
  once the brake has eased to ``BRAKE_FLOOR_S`` (and the lag stayed calm for
  ``CLEAR_S``): lifting a brake that is still holding the hub up would only
  bring the overload, and its alarm, straight back;
- ``reason()`` is the text of the hub-wide ``technical:hub_overloaded`` alarm,
  so the intensivist knows that live values may arrive late.

``watch_loop_lag`` is the thin asyncio part: the timer that feeds the detector.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import deque
from collections.abc import Callable

PROBE_S = 0.1
WINDOW_S = 5.0
ENTER_MS = 150.0
EXIT_MS = 30.0
CLEAR_S = 10.0
MAX_BRAKE_S = 4.0  # a paced agent then sends a frame about every 5 s (one that does not pace: wire.hub_session's cap)
RECENT_S = 1.0  # the brake follows the median lag of this last stretch (the verdict, of WINDOW_S)
BRAKE_UP_MS = 100.0
BRAKE_DOWN_MS = 50.0
BRAKE_GROWTH = 1.5  # per second
BRAKE_EASE = 0.8  # per second
BRAKE_FLOOR_S = 0.05  # a brake this small hardly slows an agent (a pace of 15 frames/s): the overload may clear


class OverloadDetector:
    def __init__(self) -> None:
        self._lags: deque[tuple[float, float]] = deque()  # (t s, lag ms)
        self.overloaded_since: float | None = None
        self._calm_since: float | None = None
        self.episodes = 0
        self.peak_ms = 0.0
        self._median_ms = 0.0  # of the window, kept at each sample: every agent's reader asks for the brake per frame
        self._brake_s = 0.0

    def observe(self, lag_ms: float, t: float) -> None:
        dt = t - self._lags[-1][0] if self._lags else 0.0
        self._lags.append((t, lag_ms))
        while self._lags and self._lags[0][0] < t - WINDOW_S:
            self._lags.popleft()
        median = self._median_ms = statistics.median(lag for _t, lag in self._lags)
        if self.overloaded_since is None:
            if median >= ENTER_MS and self._lags[0][0] <= t - WINDOW_S / 2:  # half a window seen: one slow moment is not overload
                self.overloaded_since, self._calm_since = t, None
                self.episodes += 1
                self._brake_s = min(MAX_BRAKE_S, 2 * median / 1000)
            return
        self.peak_ms = max(self.peak_ms, median)
        self._steer(dt, t)
        if median >= EXIT_MS:
            self._calm_since = None
        elif self._calm_since is None:
            self._calm_since = t
        elif t - self._calm_since >= CLEAR_S and self._brake_s <= BRAKE_FLOOR_S:
            self.overloaded_since = self._calm_since = None
            self._brake_s = 0.0

    def _steer(self, dt: float, t: float) -> None:
        """Tighten the brake while the loop is still late, ease it while it is on time (see the module's note)."""
        recent = statistics.median(lag for at, lag in self._lags if at >= t - RECENT_S)
        if recent >= BRAKE_UP_MS:
            self._brake_s = min(MAX_BRAKE_S, max(self._brake_s * BRAKE_GROWTH**dt, 2 * self._median_ms / 1000))
        elif recent < BRAKE_DOWN_MS:
            self._brake_s *= BRAKE_EASE**dt

    def median_ms(self) -> float:
        return self._median_ms

    @property
    def overloaded(self) -> bool:
        return self.overloaded_since is not None

    def brake_s(self) -> float:
        return self._brake_s if self.overloaded else 0.0

    def reason(self) -> str | None:
        if not self.overloaded:
            return None
        return (f"the hub is past its capacity (its event loop runs {self.median_ms():.0f} ms late): live values may arrive "
                "late and live waveforms may pause; the gateways hold the data and the hub reads them more slowly until "
                "it catches up")  # fmt: skip

    def stats(self) -> dict[str, float | int | bool]:
        return {"overloaded": self.overloaded, "loop_lag_median_ms": round(self.median_ms(), 1), "overload_episodes": self.episodes,
                "overload_peak_lag_ms": round(self.peak_ms, 1), "intake_brake_ms": round(self.brake_s() * 1000, 1)}  # fmt: skip


async def watch_loop_lag(detector: OverloadDetector, on_change: Callable[[], None], probe_s: float = PROBE_S) -> None:
    """Fire a timer every ``probe_s`` and feed the detector its lateness; ``on_change`` when the verdict changes."""
    loop = asyncio.get_running_loop()
    while True:
        start = loop.time()
        await asyncio.sleep(probe_s)
        now = loop.time()
        was = detector.overloaded
        detector.observe(max(0.0, (now - start - probe_s) * 1000), now)
        if detector.overloaded != was:
            on_change()
