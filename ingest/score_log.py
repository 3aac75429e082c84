"""Which beds' scores to write to the time-series store on this tick: those that changed, and each at least once a minute.

A score "changes" when anything a reader of its history would see changes:
a sub-score (or its going missing), the partial sum, the total, the band or
trigger, incompleteness. The comparison is one vectorised pass per score over
every bed, like the scoring itself; only the beds found due are turned into
``ScoreRecord`` rows. The store writes them (InfluxDB measurements ``news2``,
``mews``, ``qsofa``; the embedded store's ``scores`` table) without ever
holding up the tick: when it cannot take them they are counted as dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from alerts.score_result import ScoreResult

EVERY_MS = 60_000  # each bed's scores are written at least this often, changed or not


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    """One bed's result of one score at time ``t`` (ms), as ``Result.row`` gives it."""

    score: str  # "news2", "mews" or "qsofa"
    bed: str
    ward: str
    t: int
    row: dict[str, Any]
    scale: int | None = None  # the NEWS2 SpO2 scale the bed was scored on


class _Series:
    """Per score: the signature last written for each bed, and when."""

    def __init__(self) -> None:
        self.sig = np.empty((0, 0))
        self.t = np.empty(0, dtype=np.int64)

    def due(self, now: int, sig: np.ndarray) -> np.ndarray:
        n = len(sig)
        if self.sig.shape[1:] != sig.shape[1:] or len(self.sig) > n:
            self.sig, self.t = np.full((0, sig.shape[1]), np.nan), np.empty(0, dtype=np.int64)
        if len(self.sig) < n:  # new beds: due at once
            grow = n - len(self.sig)
            self.sig = np.vstack([self.sig, np.full((grow, sig.shape[1]), np.nan)])
            self.t = np.concatenate([self.t, np.full(grow, np.iinfo(np.int64).min // 2, dtype=np.int64)])
        changed = ~((self.sig == sig) | (np.isnan(self.sig) & np.isnan(sig))).all(axis=1)
        rows = np.flatnonzero(changed | (now - self.t >= EVERY_MS))
        self.sig[rows], self.t[rows] = sig[rows], now
        return rows


def signature(result: ScoreResult, verdict: np.ndarray) -> np.ndarray:
    """Everything a record of ``result`` shows, per bed, as one float row (NaN for a missing sub-score or total)."""
    return np.column_stack([result.subscores, result.partial, result.total, result.incomplete, verdict]).astype(np.float64)


class ScoreLog:
    def __init__(self) -> None:
        self._series: dict[str, _Series] = {}

    def due(self, now: int, beds: Sequence[str], wards: Sequence[str], results: dict[str, tuple[ScoreResult, np.ndarray]],
            scale: np.ndarray) -> list[ScoreRecord]:  # fmt: skip
        """The records to write now. ``results``: score name -> (its result for every bed, its verdict array)."""
        out: list[ScoreRecord] = []
        for name, (result, verdict) in results.items():
            rows = self._series.setdefault(name, _Series()).due(now, signature(result, verdict))
            for i in rows.tolist():
                out.append(ScoreRecord(name, beds[i], wards[i], now, result.row(i), int(scale[i]) if name == "news2" else None))
        return out
