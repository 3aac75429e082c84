"""Alarm statistics for quality teams, computed from the audit log.

From the audited events in a time range: alarms raised per bed per day, split
by kind and by priority (a few beds cause most alarms, so the per-bed burden
is listed too); time to acknowledge (median and 90th percentile); and time
spent silenced; and the artefact holds (``alerts.artefact``): how many alarms
were held as possible artefact, how many of those were suppressed (the condition
ended within the hold) or raised after it, and the delay the holds added.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable

import numpy as np

DAY_MS = 86_400_000


def alarm_stats(rows: Iterable[tuple[int, int, str, str]], since: int, until: int, n_beds: int) -> dict:
    """``rows``: (alert id, time, event, alert JSON) in time order, as the store's audit log returns them."""
    days = max((until - since) / DAY_MS, 1e-9)
    raised_at: dict[int, int] = {}
    by_kind: Counter[str] = Counter()
    by_priority: Counter[str] = Counter()
    by_bed: Counter[str] = Counter()
    ack_s: list[float] = []
    silenced_ms = 0
    silence_start: dict[int, tuple[int, int]] = {}  # alert id -> (start, planned end)
    holds: Counter[str] = Counter()
    hold_delay_s: list[float] = []
    for alert_id, at, event, body in rows:
        alert = json.loads(body)
        if event in ("held", "suppressed", "hold_ended"):
            holds[event] += 1
            continue
        if event == "raised" and alert.get("held_since") is not None:
            holds["raised_after_hold"] += 1
            hold_delay_s.append((at - alert["held_since"]) / 1000)
        if event == "raised":
            raised_at[alert_id] = at
            family = alert["kind"].split(":", 1)[0]
            by_kind[family if family != "technical" else alert["kind"]] += 1
            by_priority[alert["priority"]] += 1
            by_bed[alert["bed"] or alert["subject"]] += 1
        elif event == "acknowledged" and alert_id in raised_at:
            ack_s.append((at - raised_at[alert_id]) / 1000)
        elif event == "silenced":
            silence_start[alert_id] = (at, alert.get("silenced_until") or at)
        elif event in ("unsilenced", "resolved", "priority_raised") and alert_id in silence_start:
            start, _end = silence_start.pop(alert_id)
            silenced_ms += at - start
    for start, end in silence_start.values():  # silences still running at the end of the range
        silenced_ms += max(0, min(end, until) - start)
    total = sum(by_kind.values())
    acks = np.array(ack_s) if ack_s else None
    per_bed_day = defaultdict(float, {bed: round(n / days, 2) for bed, n in by_bed.most_common()})
    return {
        "since": since,
        "until": until,
        "days": round(days, 4),
        "beds": n_beds,
        "alarms": total,
        "alarms_per_bed_per_day": round(total / max(n_beds, 1) / days, 2),
        "by_kind_per_bed_per_day": {k: round(v / max(n_beds, 1) / days, 3) for k, v in sorted(by_kind.items())},
        "by_priority_per_bed_per_day": {k: round(v / max(n_beds, 1) / days, 3) for k, v in sorted(by_priority.items())},
        "per_bed_per_day": dict(per_bed_day),
        "acknowledged": len(ack_s),
        "time_to_ack_s": None
        if acks is None
        else {"median": round(float(np.median(acks)), 1), "p90": round(float(np.percentile(acks, 90)), 1)},
        "time_silenced_s": round(silenced_ms / 1000, 1),
        "artefact_holds": {
            "held": holds["held"],
            "suppressed": holds["suppressed"],
            "raised_after_hold": holds["raised_after_hold"],
            "hold_ended": holds["hold_ended"],
            "added_delay_s": None if not hold_delay_s else {"p50": round(float(np.percentile(hold_delay_s, 50)), 1),
                                                            "p95": round(float(np.percentile(hold_delay_s, 95)), 1)},
        },
    }
