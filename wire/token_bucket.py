"""A token bucket: at most ``rate`` units a second after a ``burst``, for pacing by waiting, never by dropping.

The hub's edge sessions use one for frames and one for bytes per connection: an
over-eager or broken agent is read more slowly (which TCP turns into
backpressure) instead of having frames dropped, and it cannot starve the other
agents of the hub's time; and one at the brake's read rate for an agent that
is paced (``wire.hub_session``). The edge session uses one to keep to the pace
the hub asks for (``wire.edge_session``), asking first (``ready_in``) and taking
only what it sends (``take``). Time is passed in (seconds, any monotonic origin).
"""

from __future__ import annotations


class TokenBucket:
    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self._t = now

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self._t) * self.rate)
        self._t = max(self._t, now)

    def delay_for(self, cost: float, now: float) -> float:
        """Take ``cost`` tokens at ``now``; return how long to wait first (0 if they were there)."""
        self._refill(now)
        self.tokens -= cost
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def ready_in(self, cost: float, now: float) -> float:
        """Seconds from ``now`` until ``cost`` tokens are there (0: now), taking none."""
        self._refill(now)
        return 0.0 if self.tokens >= cost else (cost - self.tokens) / self.rate

    def take(self, cost: float, now: float) -> None:
        """Take ``cost`` tokens at ``now`` (the bucket may go below empty: the next ``ready_in`` waits for it)."""
        self._refill(now)
        self.tokens -= cost
