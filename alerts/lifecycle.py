"""The alarm lifecycle: one alarm per (subject, kind) that updates, with acknowledge, silence and escalation.

States: ``active`` -> ``acknowledged`` -> ``resolved``. Each pass the rules say
which conditions hold (``reconcile``, per family of kinds); the book turns that
into events, every one of which is audited:

- ``raised``: a condition appeared;
- ``priority_raised``: its priority rose; the alarm becomes active again even if
  acknowledged, because what was acknowledged was a lesser condition;
- ``updated``: priority fell (the title and detail follow the condition silently);
- ``cleared``: the condition went away but the alarm latches (kind configured
  latching) and stays until acknowledged;
- ``resolved``: the condition went away (non-latching), or a cleared latching
  alarm was acknowledged;

A condition must stay away (or at a lower priority) for the family's
``clear_delay_s`` before the alarm clears (or is lowered): a score wavering
around a band edge is one alarm, not a stream of raise/resolve pairs, and an
acknowledged alarm is not re-activated by every wobble back up.
- ``acknowledged``: a person took it (who and when are recorded);
- ``silenced`` / ``unsilenced``: a person silenced it, with a reason, for at most
  the policy's limit (15 min); when the silence ends and the condition still
  holds, the alarm is active again;
- ``escalated``: nobody acknowledged it in time; it moves to the next tier
  (bedside nurse -> tele-ICU nurse -> intensivist).

Artefact holds (``alerts.artefact``): a heart-rate or SpO2 limit condition that
looks like artefact is first ``held`` (state ``held``, not in the book, not shown
to consoles), then either ``raised`` (same id; ``held_since`` and ``hold_reason``
say it was held) or ``suppressed`` (state ``resolved``: it ended within the hold).
A hold interrupted by a hub restart ends with ``hold_ended``.
- ``regrouped``: the alarm's headline group changed (``alerts.headline``), nothing else.

Priorities follow IEC 60601-1-8 and FHIR DeviceAlert codes: high, medium, low.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

from alerts.kinds import family_of
from alerts.priority import Priority as Priority  # re-exported: the lifecycle speaks in these priorities
from wire.ids import new_id


ACTIVE, ACKNOWLEDGED, RESOLVED = "active", "acknowledged", "resolved"
HELD = "held"  # a condition held as possible artefact: never in the book's open alarms


@dataclass(slots=True)
class Alert:
    id: str  # UUIDv7
    subject: str  # a bed id, or "agent:<id>", or "hub"
    bed: str  # the bed, or "" for alarms about an agent or the hub
    ward: str
    kind: str  # e.g. "news2", "limit:spo2_low", "trend:news2_rise", "technical:no_data"
    category: str  # "physiological" or "technical"
    priority: str
    state: str
    title: str
    detail: str
    raised: int
    updated: int
    condition: bool = True  # does the condition still hold (False only for a latched alarm)
    acked_by: str | None = None
    acked_at: int | None = None
    resolved_at: int | None = None
    silenced_until: int | None = None
    silenced_by: str | None = None
    silence_reason: str | None = None
    tier: int = 0
    tier_role: str = ""
    tier_since: int = 0
    absent_since: int | None = None  # condition missing (or lower) since, for the clear delay
    held_since: int | None = None  # when its condition was first held as possible artefact (None: never held)
    hold_reason: str | None = None  # why it was held, in words
    group: str = ""  # its headline group (alerts.headline): "<bed>/physiological", or "<subject>/<kind>" for a technical alarm
    headline: str = ""  # the group's headline, e.g. "Respiratory deterioration"
    group_head: bool = False  # does this alarm head its group
    group_size: int = 0  # open alarms in its group

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, body: dict) -> Alert:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in body.items() if k in names})

    @property
    def family(self) -> str:
        return family_of(self.kind)


@dataclass(frozen=True, slots=True)
class Condition:
    """What the rules say holds now on one subject for one alarm kind."""

    subject: str
    bed: str
    ward: str
    kind: str
    priority: Priority
    title: str
    detail: str
    category: str = "physiological"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    event: str
    alert: Alert
    by: str | None = None
    note: str | None = None


class AlertError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Rules:
    """What the book needs to know of the policy, per ward (see ``alerts.policy.WardPolicy``)."""

    latching: Callable[[str, str], bool]  # (ward, family) -> latches?
    tiers: Callable[[str], tuple[str, ...]]  # ward -> escalation roles in order
    escalate_after_s: Callable[[str, Priority], float | None]  # (ward, priority) -> seconds, None: never
    silence_max_s: Callable[[str], float]
    clear_delay_s: Callable[[str, str], float] = lambda _w, _f: 0.0  # (ward, family) -> seconds


DEFAULT_RULES = Rules(
    latching=lambda _w, _f: False,
    tiers=lambda _w: ("bedside_nurse", "teleicu_nurse", "intensivist"),
    escalate_after_s=lambda _w, p: {Priority.HIGH: 60.0, Priority.MEDIUM: 300.0}.get(p),
    silence_max_s=lambda _w: 900.0,
)


class AlarmBook:
    """All open alarms, keyed by (subject, kind); resolved ones leave after their event."""

    def __init__(self, rules: Rules = DEFAULT_RULES, new_id: Callable[[int], str] = new_id) -> None:
        self.rules = rules
        self._new_id = new_id  # alarm ids: UUIDv7 strings, unique across hubs, ordered by when they were raised
        self.open: dict[tuple[str, str], Alert] = {}
        self.by_id: dict[str, Alert] = {}
        self.interrupted_holds: list[Alert] = []  # holds persisted before a restart, to be ended (``alerts.artefact``)
        self.touched: set[str] = set()  # subjects whose open alarms came, went or changed priority (for ``alerts.headline``)

    def restore(self, alerts: list[dict]) -> None:
        """Reload open alarms persisted before a restart (a hold in progress is not an open alarm: it is set aside)."""
        for body in alerts:
            a = Alert.from_json(body)
            if a.state == HELD:
                self.interrupted_holds.append(a)
                continue
            self.open[(a.subject, a.kind)] = a
            self.by_id[a.id] = a

    def adopt(self, alerts: list[dict]) -> int:
        """Take over open alarms another hub worker persisted (a ward that moved here); returns how many.

        An alarm already in the book (by id) is kept as it is here; one whose condition already has another
        open alarm here is left out (the shared store holds both; this book goes on with its own).
        """
        adopted = 0
        for body in alerts:
            a = Alert.from_json(body)
            if a.id in self.by_id or (a.subject, a.kind) in self.open:
                continue
            if a.state == HELD:
                if all(h.id != a.id for h in self.interrupted_holds):
                    self.interrupted_holds.append(a)
                continue
            self.open[(a.subject, a.kind)] = a
            self.by_id[a.id] = a
            self.touched.add(a.subject)
            adopted += 1
        return adopted

    def let_go(self, ward: str) -> int:
        """Drop a ward's open alarms from this book, unchanged (another hub worker carries them on); returns how many."""
        gone = [a for a in self.open.values() if a.ward == ward]
        for a in gone:
            del self.open[(a.subject, a.kind)]
            del self.by_id[a.id]
            self.touched.add(a.subject)
        self.interrupted_holds = [a for a in self.interrupted_holds if a.ward != ward]
        return len(gone)

    def held(self, cond: Condition, now: int, reason: str) -> Alert:
        """A provisional alarm for a condition held as possible artefact: state ``held``, kept out of the book."""
        tiers = self.rules.tiers(cond.ward)
        return Alert(id=self._new_id(now), subject=cond.subject, bed=cond.bed, ward=cond.ward, kind=cond.kind, category=cond.category,
                     priority=cond.priority.code, state=HELD, title=cond.title, detail=cond.detail, raised=now, updated=now,
                     tier_role=tiers[0], tier_since=now, held_since=now, hold_reason=reason)  # fmt: skip

    def raise_held(self, a: Alert, cond: Condition, now: int, note: str) -> AlertEvent:
        """A held alarm whose condition still holds is raised, under the id it was held with."""
        a.state, a.raised, a.updated, a.tier_since = ACTIVE, now, now, now
        a.priority, a.title, a.detail = cond.priority.code, cond.title, cond.detail
        self.open[(a.subject, a.kind)] = a
        self.by_id[a.id] = a
        self.touched.add(a.subject)
        return AlertEvent("raised", a, note=note)

    # --- conditions ------------------------------------------------------------------

    def reconcile(self, family: str, conditions: dict[tuple[str, str], Condition], now: int) -> list[AlertEvent]:
        """Make the open alarms of ``family`` match ``conditions`` ((subject, kind) -> condition)."""
        events: list[AlertEvent] = []
        for key, cond in conditions.items():
            a = self.open.get(key)
            if a is None:
                a = self._new(cond, now)
                events.append(AlertEvent("raised", a))
                continue
            old = Priority[a.priority.upper()]
            a.title, a.detail = cond.title, cond.detail
            if not a.condition:  # a latched alarm whose condition came back
                a.condition, a.updated = True, now
                events.append(AlertEvent("updated", a, note="condition present again"))
            if cond.priority != old:
                self.touched.add(a.subject)
            if cond.priority > old:
                a.absent_since = None
                a.priority, a.updated = cond.priority.code, now
                self._reactivate(a, now)
                events.append(AlertEvent("priority_raised", a))
            elif cond.priority < old:
                if self._waited(a, family, now):
                    a.priority, a.updated, a.absent_since = cond.priority.code, now, None
                    events.append(AlertEvent("updated", a, note=f"priority lowered to {cond.priority.code}"))
            else:
                a.absent_since = None
        for key, a in list(self.open.items()):
            if a.family != family or key in conditions or not a.condition:
                continue
            if not self._waited(a, family, now):
                continue
            a.absent_since = None
            if self.rules.latching(a.ward, family) and a.state == ACTIVE:
                a.condition, a.updated = False, now
                events.append(AlertEvent("cleared", a))
            else:
                events.append(self._resolve(a, now))
        return events

    def _waited(self, a: Alert, family: str, now: int) -> bool:
        """Has the condition been gone (or lower) for the family's clear delay? Starts the wait if not."""
        if a.absent_since is None:
            a.absent_since = now
        return now - a.absent_since >= self.rules.clear_delay_s(a.ward, family) * 1000

    def _new(self, cond: Condition, now: int) -> Alert:
        tiers = self.rules.tiers(cond.ward)
        a = Alert(
            id=self._new_id(now),
            subject=cond.subject,
            bed=cond.bed,
            ward=cond.ward,
            kind=cond.kind,
            category=cond.category,
            priority=cond.priority.code,
            state=ACTIVE,
            title=cond.title,
            detail=cond.detail,
            raised=now,
            updated=now,
            tier=0,
            tier_role=tiers[0],
            tier_since=now,
        )
        self.open[(a.subject, a.kind)] = a
        self.by_id[a.id] = a
        self.touched.add(a.subject)
        return a

    def _reactivate(self, a: Alert, now: int) -> None:
        a.state, a.acked_by, a.acked_at = ACTIVE, None, None
        a.silenced_until = a.silenced_by = a.silence_reason = None
        a.tier_since = now

    def _resolve(self, a: Alert, now: int) -> AlertEvent:
        a.state, a.resolved_at, a.updated = RESOLVED, now, now
        a.condition = False
        del self.open[(a.subject, a.kind)]
        del self.by_id[a.id]
        self.touched.add(a.subject)
        return AlertEvent("resolved", a)

    # --- people ------------------------------------------------------------------------

    def _get(self, alert_id: str) -> Alert:
        a = self.by_id.get(alert_id)
        if a is None:
            raise AlertError(f"alert {alert_id} is not open (unknown or already resolved)")
        return a

    def acknowledge(self, alert_id: str, by: str, now: int) -> list[AlertEvent]:
        by = by.strip()
        if not by:
            raise AlertError("acknowledging needs the name of the person acting")
        a = self._get(alert_id)
        events: list[AlertEvent] = []
        if a.state != ACKNOWLEDGED:
            a.state, a.acked_by, a.acked_at, a.updated = ACKNOWLEDGED, by, now, now
            events.append(AlertEvent("acknowledged", a, by))
        if not a.condition:  # a latched alarm whose condition is gone: acknowledging ends it
            events.append(self._resolve(a, now))
        return events

    def silence(self, alert_id: str, by: str, reason: str, duration_s: float, now: int) -> AlertEvent:
        by, reason = by.strip(), reason.strip()
        if not by or not reason:
            raise AlertError("silencing needs the name of the person acting and a reason")
        a = self._get(alert_id)
        limit = self.rules.silence_max_s(a.ward)
        if not 0 < duration_s <= limit:
            raise AlertError(f"a silence lasts more than 0 and at most {limit:g} s, not {duration_s:g}")
        a.silenced_until, a.silenced_by, a.silence_reason = now + int(duration_s * 1000), by, reason
        a.updated = now
        return AlertEvent("silenced", a, by, reason)

    # --- time ----------------------------------------------------------------------------

    def tick(self, now: int) -> list[AlertEvent]:
        """End silences that ran out and escalate alarms nobody acknowledged in time."""
        events: list[AlertEvent] = []
        for a in list(self.open.values()):
            if a.silenced_until is not None:
                if now < a.silenced_until:
                    continue
                a.silenced_until = None
                a.updated = now
                if a.condition:
                    self._reactivate(a, now)
                    events.append(AlertEvent("unsilenced", a, note="silence ended; condition still present"))
                else:
                    events.append(AlertEvent("unsilenced", a, note="silence ended"))
            if a.state != ACTIVE:
                continue
            after = self.rules.escalate_after_s(a.ward, Priority[a.priority.upper()])
            tiers = self.rules.tiers(a.ward)
            if after is None or a.tier >= len(tiers) - 1 or now - a.tier_since < after * 1000:
                continue
            a.tier += 1
            a.tier_role, a.tier_since, a.updated = tiers[a.tier], now, now
            events.append(AlertEvent("escalated", a, note=f"not acknowledged within {after:g} s; now with {a.tier_role}"))
        return events

    def list_open(self) -> list[Alert]:
        return sorted(self.open.values(), key=lambda a: (a.state != ACTIVE, -Priority[a.priority.upper()], -a.raised))
