"""NEWS2 totals for the scenario tests: ``alerts.news2`` when present, else a tiny reference.

The reference follows ``shared/clinical/scores.md`` (scale 1, round half up, then
band); it exists so these tests do not depend on another team's module.
"""

from __future__ import annotations

import math

import numpy as np

try:
    from alerts.news2 import news2 as _alerts_news2
    from config_support import score_tables
except ImportError:  # pragma: no cover - depends on what is checked in
    _alerts_news2 = None


def _rhu(x: float, decimals: int = 0) -> float:
    scale = 10**decimals
    return math.floor(x * scale + 0.5 + 1e-9) / scale


def _band(value: float, uppers: tuple[float, ...], scores: tuple[int, ...]) -> int:
    for upper, score in zip(uppers, scores):
        if value <= upper:
            return score
    return scores[-1]


def reference_news2(rr: float, spo2: float, o2: int, sbp: float, hr: float, acvpu: int, temp: float) -> int:
    return (
        _band(_rhu(rr), (8, 11, 20, 24), (3, 1, 0, 2, 3))
        + _band(_rhu(spo2), (91, 93, 95), (3, 2, 1, 0))
        + (2 if o2 else 0)
        + _band(_rhu(sbp), (90, 100, 110, 219), (3, 2, 1, 0, 3))
        + _band(_rhu(hr), (40, 50, 90, 110, 130), (3, 1, 0, 1, 2, 3))
        + (0 if acvpu == 0 else 3)
        + _band(_rhu(temp, 1), (35.0, 36.0, 38.0, 39.0), (3, 1, 0, 1, 2))
    )


def news2_totals(rows: list[dict[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(totals, any single parameter scored 3) for rows with keys rr, spo2, o2, sbp, hr, acvpu, temp."""
    keys = ("rr", "spo2", "o2", "sbp", "hr", "acvpu", "temp")
    cols = {k: np.array([r[k] for r in rows], dtype=float) for k in keys}
    if _alerts_news2 is not None:
        res = _alerts_news2(**cols, scale2=np.zeros(len(rows), dtype=bool), tables=score_tables().news2)
        assert not res.incomplete.any()
        return res.total.astype(int), res.any_three
    totals = np.array([reference_news2(**{k: r[k] for k in keys}) for r in rows])  # type: ignore[arg-type]
    threes = np.array(
        [
            any(reference_news2(**{k: (r[k] if k == j else _NEUTRAL[k]) for k in keys}) == 3 for j in keys)  # type: ignore[arg-type]
            for r in rows
        ]
    )
    return totals, threes


_NEUTRAL = {"rr": 16, "spo2": 98, "o2": 0, "sbp": 120, "hr": 70, "acvpu": 0, "temp": 37.0}
