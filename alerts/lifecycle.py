"""The alarm lifecycle: one alarm per (bed, kind) that updates, with acknowledge.

States: ``active`` -> ``acknowledged`` -> ``resolved``. The engine says, each
pass, which condition holds on which bed and at what priority; the book turns
that into events:

- a condition appearing raises an alarm (``raised``);
- its priority rising re-activates it, even if acknowledged (``escalated``),
  because a clinician acknowledged a lesser condition than the one now present;
- its priority falling or its text changing updates it in place (``updated``);
- the condition clearing resolves it (``resolved``);
- a person acknowledging it records who and when (``acknowledged``).

Priorities follow IEC 60601-1-8 and FHIR DeviceAlert codes: high, medium, low.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum


class Priority(IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def code(self) -> str:
        return self.name.lower()


ACTIVE, ACKNOWLEDGED, RESOLVED = "active", "acknowledged", "resolved"


@dataclass(slots=True)
class Alert:
    id: int
    bed: str
    ward: str
    kind: str
    priority: str
    state: str
    title: str
    detail: str
    raised: int
    updated: int
    acked_by: str | None = None
    acked_at: int | None = None
    resolved_at: int | None = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Condition:
    """What the rules say holds now on one bed for one alarm kind."""

    bed: str
    ward: str
    kind: str
    priority: Priority
    title: str
    detail: str


@dataclass(frozen=True, slots=True)
class AlertEvent:
    event: str  # raised | escalated | updated | resolved | acknowledged
    alert: Alert
    by: str | None = None


class AlertError(ValueError):
    pass


class AlarmBook:
    """All open alarms, keyed by (bed, kind); resolved ones are forgotten after their event."""

    def __init__(self, next_id: int = 1) -> None:
        self._next_id = next_id
        self.open: dict[tuple[str, str], Alert] = {}
        self.by_id: dict[int, Alert] = {}

    def restore(self, alerts: list[dict]) -> None:
        """Reload open alarms persisted before a restart."""
        for body in alerts:
            a = Alert(**body)
            self.open[(a.bed, a.kind)] = a
            self.by_id[a.id] = a
            self._next_id = max(self._next_id, a.id + 1)

    def reconcile(self, kind: str, conditions: dict[str, Condition], now: int) -> list[AlertEvent]:
        """Make the open alarms of ``kind`` match ``conditions`` (bed -> condition)."""
        events: list[AlertEvent] = []
        for bed, cond in conditions.items():
            a = self.open.get((bed, kind))
            if a is None:
                a = Alert(
                    id=self._next_id,
                    bed=bed,
                    ward=cond.ward,
                    kind=kind,
                    priority=cond.priority.code,
                    state=ACTIVE,
                    title=cond.title,
                    detail=cond.detail,
                    raised=now,
                    updated=now,
                )
                self._next_id += 1
                self.open[(bed, kind)] = a
                self.by_id[a.id] = a
                events.append(AlertEvent("raised", a))
                continue
            old = Priority[a.priority.upper()]
            if cond.priority > old:
                a.priority, a.title, a.detail, a.updated = cond.priority.code, cond.title, cond.detail, now
                a.state, a.acked_by, a.acked_at = ACTIVE, None, None
                events.append(AlertEvent("escalated", a))
            elif cond.priority < old or cond.title != a.title:
                a.priority, a.title, a.detail, a.updated = cond.priority.code, cond.title, cond.detail, now
                events.append(AlertEvent("updated", a))
        for (bed, k), a in list(self.open.items()):
            if k == kind and bed not in conditions:
                a.state, a.resolved_at, a.updated = RESOLVED, now, now
                del self.open[(bed, k)]
                del self.by_id[a.id]
                events.append(AlertEvent("resolved", a))
        return events

    def acknowledge(self, alert_id: int, by: str, now: int) -> AlertEvent:
        by = by.strip()
        if not by:
            raise AlertError("acknowledging needs the name of the person acting")
        a = self.by_id.get(alert_id)
        if a is None:
            raise AlertError(f"alert {alert_id} is not open (unknown or already resolved)")
        if a.state == ACKNOWLEDGED:
            return AlertEvent("acknowledged", a, by)
        a.state, a.acked_by, a.acked_at, a.updated = ACKNOWLEDGED, by, now, now
        return AlertEvent("acknowledged", a, by)

    def list_open(self) -> list[Alert]:
        return sorted(self.open.values(), key=lambda a: (-Priority[a.priority.upper()], -a.raised))
