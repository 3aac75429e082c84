"""Exponential backoff with full jitter: how long to wait before trying again after consecutive failures.

The n-th consecutive wait is uniform in ``[0, min(most, initial * 2**n)]``, so
many clients failing together spread out rather than retry in step. ``reset``
after a success.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, initial: float, most: float, rng: random.Random | None = None) -> None:
        self.initial, self.most = initial, most
        self.rng = rng or random.Random()
        self.attempt = 0

    def next(self) -> float:
        delay = min(self.most, self.initial * 2**self.attempt)
        self.attempt = min(self.attempt + 1, 30)
        return self.rng.uniform(0, delay)

    def reset(self) -> None:
        self.attempt = 0
