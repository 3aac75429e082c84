"""Per-key request limits for the lighter services' public endpoints (the queue's scan-and-share, the locker's texted
sign-in codes), sans I/O: the caller hands in the time.

Each key (a client address, an ABHA number or mobile) has a ``wire.token_bucket``
bucket of ``burst`` requests refilled at ``per_minute``; a refused request takes
nothing, so waiting is enough to be let in again. The table is bounded
(``max_keys``, the least recently used key is forgotten first), so a flood of
new keys costs memory in proportion to ``max_keys`` only.
"""

from __future__ import annotations

from collections import OrderedDict

from wire.token_bucket import TokenBucket


class RateLimiter:
    def __init__(self, per_minute: float, burst: int, max_keys: int = 10_000) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be > 0 and burst >= 1")
        self.per_s = per_minute / 60
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def allow(self, key: str, now_ms: int) -> bool:
        """Take one request from ``key``'s bucket; False (and nothing taken) when it is empty."""
        now = now_ms / 1000
        bucket = self._buckets.pop(key, None) or TokenBucket(self.per_s, self.burst, now)
        refused = bucket.delay_for(1, now) > 0
        if refused:
            bucket.tokens += 1
        self._buckets[key] = bucket
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return not refused

    def retry_after_s(self, key: str) -> int:
        bucket = self._buckets.get(key)
        return 1 if bucket is None else max(1, round((1 - bucket.tokens) / self.per_s))
