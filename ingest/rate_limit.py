"""A token bucket per edge connection: frames and bytes per second, enforced by reading more slowly.

An over-eager or broken agent is slowed down (the hub stops reading its socket
for a while, which TCP turns into backpressure) instead of having frames
dropped, and it cannot starve the other agents of the hub's time.
"""

from __future__ import annotations

import time


class TokenBucket:
    def __init__(self, rate: float, burst: float, clock=time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self._clock = clock
        self._t = clock()

    def delay_for(self, cost: float) -> float:
        """Take ``cost`` tokens; return how long to wait first (0 if they were there)."""
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self._t) * self.rate)
        self._t = now
        self.tokens -= cost
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate
