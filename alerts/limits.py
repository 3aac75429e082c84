"""Physiological limit alarms over all beds at once: persistence delay and hysteresis.

For every limited parameter and direction (low, high), a bed's value must stay
beyond the limit for ``delay_s`` before the condition holds, and once it holds
it clears only when the value is back inside the limit by ``hysteresis``. A
value that goes missing (probe off, stale) cancels a pending delay but does not
clear an alarm already raised: losing the signal is not evidence of recovery.
The technical alarm for the lost signal is raised elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alerts.kinds import limit_kind
from alerts.lifecycle import Condition, Priority
from alerts.policy import Limit
from wire.vocabulary import BY_KEY, COLUMN, written_value

NONE = np.iinfo(np.int64).max  # "not beyond the limit": now - NONE is negative, never past a delay


class LimitTracker:
    """Per-bed limit arrays and per-bed alarm timers; rebuild limits with ``set_limits`` when beds change."""

    def __init__(self, params: Sequence[str]) -> None:
        self.params = tuple(params)
        self.cols = np.array([COLUMN[p] for p in self.params], dtype=int)
        k = len(self.params)
        self.n = 0
        self.lo = np.full((0, k), np.nan)
        self.hi = np.full((0, k), np.nan)
        self.delay_ms = np.zeros((0, k))
        self.hyst = np.zeros((0, k))
        self.prio_lo = np.zeros((0, k), dtype=np.int8)
        self.prio_hi = np.zeros((0, k), dtype=np.int8)
        self.since_lo = np.full((0, k), NONE, dtype=np.int64)  # ms the low violation began
        self.since_hi = np.full((0, k), NONE, dtype=np.int64)
        self.on_lo = np.zeros((0, k), dtype=bool)
        self.on_hi = np.zeros((0, k), dtype=bool)

    def set_limits(self, per_bed: Sequence[dict[str, Limit]]) -> None:
        """Limits of every bed (row order of the state matrix); keeps timers of existing beds."""
        n, k = len(per_bed), len(self.params)
        old = self.n
        for name, fill, dtype in (("since_lo", NONE, np.int64), ("since_hi", NONE, np.int64), ("on_lo", False, bool), ("on_hi", False, bool)):
            arr = np.full((n, k), fill, dtype=dtype)
            arr[: min(old, n)] = getattr(self, name)[: min(old, n)]
            setattr(self, name, arr)
        self.lo, self.hi = np.full((n, k), np.nan), np.full((n, k), np.nan)
        self.delay_ms, self.hyst = np.zeros((n, k)), np.zeros((n, k))
        self.prio_lo, self.prio_hi = np.zeros((n, k), dtype=np.int8), np.zeros((n, k), dtype=np.int8)
        for i, limits in enumerate(per_bed):
            for j, p in enumerate(self.params):
                lim = limits.get(p)
                if lim is None:
                    continue
                self.lo[i, j] = np.nan if lim.low is None else lim.low
                self.hi[i, j] = np.nan if lim.high is None else lim.high
                self.delay_ms[i, j] = lim.delay_s * 1000
                self.hyst[i, j] = lim.hysteresis
                self.prio_lo[i, j] = self.prio_hi[i, j] = int(lim.priority)
        self.n = n

    def update(self, inputs: np.ndarray, now: int) -> None:
        """Advance timers with the latest values (``inputs``: the stale-masked state matrix)."""
        v = inputs[: self.n][:, self.cols]
        with np.errstate(invalid="ignore"):
            for side, beyond, back in (
                ("lo", v < self.lo, v >= self.lo + self.hyst),
                ("hi", v > self.hi, v <= self.hi - self.hyst),
            ):
                since = getattr(self, f"since_{side}")
                on = getattr(self, f"on_{side}")
                since[beyond & (since == NONE)] = now
                since[~beyond] = NONE  # back inside, or missing: a pending delay starts over
                on |= beyond & (now - since >= self.delay_ms)
                on &= ~back  # only a valid value back inside by the hysteresis clears it

    def conditions(self, beds: Sequence[str], wards: Sequence[str], inputs: np.ndarray) -> dict[tuple[str, str], Condition]:
        out: dict[tuple[str, str], Condition] = {}
        for side, word in (("lo", "low"), ("hi", "high")):
            on = getattr(self, f"on_{side}")
            limit = self.lo if side == "lo" else self.hi
            prio = self.prio_lo if side == "lo" else self.prio_hi
            for i, j in zip(*np.nonzero(on), strict=True):
                p = self.params[j]
                kind = limit_kind(p, word)
                value = inputs[i, self.cols[j]]
                shown = "signal lost" if np.isnan(value) else written_value(p, f"{value:g}")
                title = f"{BY_KEY[p].label} {word}: {shown} (limit {limit[i, j]:g})"
                out[(beds[i], kind)] = Condition(
                    subject=beds[i], bed=beds[i], ward=wards[i], kind=kind, priority=Priority(int(prio[i, j])),
                    title=title, detail=f"{BY_KEY[p].meaning} beyond its {word} limit for at least {self.delay_ms[i, j] / 1000:g} s",
                )  # fmt: skip
        return out
