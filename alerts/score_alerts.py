"""Scores turned into alarm conditions (shared/clinical/alarms.md).

NEWS2 response bands:

- a single parameter scoring 3 (band low-medium): low priority ("urgent ward-based response");
- band medium (total 5-6): medium;
- band high (7 or more): high.

MEWS at or above its trigger, and a positive qSOFA, raise one alarm each at the
priority the ward's policy gives. The band edges and triggers are the scores'
own tables (``config/scores.yaml``, one place), passed in by the caller.

An incomplete score can still prove a band: sub-scores are never negative, so
a partial sum of 5 already means the total is at least 5. Such an alarm says
"at least" and names what is missing; it never presents the partial sum as a total.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alerts.kinds import MEWS, NEWS2, QSOFA
from alerts.lifecycle import Condition, Priority
from alerts.mews import MewsResult
from alerts.news2 import COMPONENTS, News2Result
from alerts.policy import News2Bands, WardPolicy
from alerts.qsofa import QsofaResult
from alerts.score_tables import ScoreTables

KIND = NEWS2
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
    res: News2Result, beds: Sequence[str], wards: Sequence[str], policy: News2Bands, tables: ScoreTables,
    enabled: np.ndarray | None = None,
) -> dict[tuple[str, str], Condition]:  # fmt: skip
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
            title = f"NEWS2 ≥{tables.news2.medium}: medium clinical risk"
        else:
            title = f"NEWS2 ≥{tables.news2.high}: high clinical risk"
        sub = ", ".join(
            f"{name} {'—' if np.isnan(s) else int(s)}" for name, s in zip(COMPONENTS, res.subscores[i], strict=True)
        )
        out[(beds[i], KIND)] = Condition(
            subject=beds[i], bed=beds[i], ward=wards[i], kind=KIND, priority=p, title=title, detail=f"{score}; sub-scores: {sub}"
        )
    return out


def trigger_conditions(
    mews: MewsResult, qsofa: QsofaResult, beds: Sequence[str], wards: Sequence[str], policies: Sequence[WardPolicy],
    tables: ScoreTables,
) -> dict[str, dict[tuple[str, str], Condition]]:  # fmt: skip
    """MEWS triggered and qSOFA positive, per bed whose ward enables the alarm: one family each.

    An incomplete score alarms only when its known part already reaches the trigger ("≥N (incomplete)")."""
    out: dict[str, dict[tuple[str, str], Condition]] = {}
    scores = ((MEWS, mews.triggered, mews, f"MEWS ≥ {tables.mews.trigger}"),
              (QSOFA, qsofa.positive, qsofa, f"qSOFA positive (≥ {tables.qsofa.trigger})"))  # fmt: skip
    for kind, on, res, label in scores:
        family: dict[tuple[str, str], Condition] = {}
        for i in np.flatnonzero(on):
            alarm = getattr(policies[i], kind)
            if not alarm.enabled:
                continue
            shown = f"≥{int(res.partial[i])} (incomplete)" if res.incomplete[i] else f"{int(res.partial[i])}"
            family[(beds[i], kind)] = Condition(beds[i], beds[i], wards[i], kind, alarm.priority, f"{kind.upper()} {shown}: {label}", "")
        out[kind] = family
    return out
