"""A bounded record of recent latencies (ms) with percentiles, for the API and the demo summary."""

from __future__ import annotations

from collections import deque

import numpy as np


class LatencyRecorder:
    def __init__(self, keep: int = 200_000) -> None:
        self._samples: deque[float] = deque(maxlen=keep)
        self.count = 0

    def add(self, ms: float) -> None:
        self._samples.append(ms)
        self.count += 1

    def extend(self, values: list[float]) -> None:
        self._samples.extend(values)
        self.count += len(values)

    def values(self) -> np.ndarray:
        """The latencies kept (the most recent ``keep``), oldest first."""
        return np.fromiter(self._samples, dtype=float, count=len(self._samples))

    def percentiles(self, qs: tuple[float, ...] = (50, 90, 99)) -> dict[str, float | None]:
        if not self._samples:
            return {f"p{q:g}": None for q in qs} | {"n": 0}
        arr = self.values()
        vals = np.percentile(arr, qs)
        return {f"p{q:g}": round(float(v), 2) for q, v in zip(qs, vals, strict=True)} | {"n": self.count, "max": round(float(arr.max()), 2)}
