"""NEWS2 response bands turned into alarm conditions (shared/clinical/alarms.md).

- a single parameter scoring 3 (band low-medium): low priority ("urgent ward-based response");
- band medium (total 5-6): medium;
- band high (7 or more): high.

The band edges are the score's own: the NEWS2 tables the caller scored with (one place).

An incomplete score can still prove a band: sub-scores are never negative, so
a partial sum of 5 already means the total is at least 5. Such an alarm says
"at least" and names what is missing; it never presents the partial sum as a total.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alerts.lifecycle import Condition, Priority
from alerts.news2 import COMPONENTS, News2Result
from alerts.policy import News2Bands
from alerts.score_tables import News2Tables

KIND = "news2"
BAND_LOW_MEDIUM, BAND_MEDIUM, BAND_HIGH = 1, 2, 3  # codes of alerts.news2.BAND_LABELS


def news2_priorities(res: News2Result, policy: News2Bands, enabled: np.ndarray | None = None) -> np.ndarray:
    """Priority code per bed (0 none, else ``Priority`` value), in one vectorised pass."""
    prio = np.zeros(len(res.partial), dtype=np.int8)
    if enabled is not None and not enabled.any():
        return prio
    if policy.single_three:
        prio[res.band == BAND_LOW_MEDIUM] = Priority.LOW
    prio[res.band == BAND_MEDIUM] = Priority.MEDIUM
    prio[res.band == BAND_HIGH] = Priority.HIGH
    if enabled is not None:
        prio[~enabled] = 0
    return prio


def news2_conditions(
    res: News2Result, beds: Sequence[str], wards: Sequence[str], policy: News2Bands, tables: News2Tables,
    enabled: np.ndarray | None = None,
) -> dict[tuple[str, str], Condition]:
    """One condition per bed whose band raises an alarm; ``tables`` (those ``res`` was scored with) name the bands."""
    prio = news2_priorities(res, policy, enabled)
    out: dict[tuple[str, str], Condition] = {}
    for i in np.flatnonzero(prio):
        p = Priority(int(prio[i]))
        partial = int(res.partial[i])
        threes = [COMPONENTS[j] for j in np.flatnonzero(res.subscores[i] == 3)]
        if res.incomplete[i]:
            missing = ", ".join(res.missing(int(i)))
            score = f"NEWS2 ≥{partial} (incomplete, missing {missing})"
        else:
            score = f"NEWS2 {partial}"
        # The title names the band, so it stays put while the score moves inside it; the detail has the score now.
        if p == Priority.LOW:
            title = f"NEWS2: a single parameter scores 3 ({', '.join(threes)})"
        elif p == Priority.MEDIUM:
            title = f"NEWS2 ≥{tables.medium}: medium clinical risk"
        else:
            title = f"NEWS2 ≥{tables.high}: high clinical risk"
        sub = ", ".join(
            f"{name} {'—' if np.isnan(s) else int(s)}" for name, s in zip(COMPONENTS, res.subscores[i], strict=True)
        )
        out[(beds[i], KIND)] = Condition(
            subject=beds[i], bed=beds[i], ward=wards[i], kind=KIND, priority=p, title=title, detail=f"{score}; sub-scores: {sub}"
        )
    return out
