"""The one wall clock of edge, hub and simulators: Unix time in whole milliseconds (the wire's time unit)."""

from __future__ import annotations

import time


def wall_ms() -> int:
    return time.time_ns() // 1_000_000
