"""Alarm lifecycle: one alarm per (subject, kind) that raises, updates, latches, silences, escalates, resolves."""

import pytest

from alerts.lifecycle import ACKNOWLEDGED, ACTIVE, RESOLVED, AlarmBook, AlertError, Condition, Priority, Rules

S = 1000  # ms


def cond(bed: str, p: Priority, title: str = "t", kind: str = "news2") -> dict:
    return {(bed, kind): Condition(subject=bed, bed=bed, ward="A", kind=kind, priority=p, title=title, detail="")}


def rules(latching: bool = False, silence_max: float = 900) -> Rules:
    return Rules(
        latching=lambda _w, _f: latching,
        tiers=lambda _w: ("bedside_nurse", "teleicu_nurse", "intensivist"),
        escalate_after_s=lambda _w, p: {Priority.HIGH: 60.0, Priority.MEDIUM: 300.0}.get(p),
        silence_max_s=lambda _w: silence_max,
    )


def test_one_condition_is_one_alarm_that_updates() -> None:
    book = AlarmBook()
    ev = book.reconcile("news2", cond("A-01", Priority.MEDIUM), now=1)
    assert [e.event for e in ev] == ["raised"]
    first = ev[0].alert.id
    assert book.reconcile("news2", cond("A-01", Priority.MEDIUM), now=2) == []
    ev = book.reconcile("news2", cond("A-01", Priority.HIGH, "worse"), now=3)
    assert [e.event for e in ev] == ["priority_raised"]
    assert len(book.open) == 1 and ev[0].alert.priority == "high" and ev[0].alert.id == first


def test_families_clear_only_their_own_alarms() -> None:
    book = AlarmBook()
    book.reconcile("news2", cond("A-01", Priority.MEDIUM), now=1)
    book.reconcile("limit", cond("A-01", Priority.HIGH, kind="limit:spo2_low"), now=1)
    (ev,) = book.reconcile("limit", {}, now=2)
    assert ev.event == "resolved" and ev.alert.kind == "limit:spo2_low"
    assert list(book.open) == [("A-01", "news2")]


def test_acknowledge_records_who_and_when_and_a_higher_priority_reactivates() -> None:
    book = AlarmBook()
    (raised,) = book.reconcile("news2", cond("A-01", Priority.MEDIUM), now=1)
    (ev,) = book.acknowledge(raised.alert.id, "Nurse Meena", now=5)
    assert ev.alert.state == ACKNOWLEDGED and ev.alert.acked_by == "Nurse Meena" and ev.alert.acked_at == 5
    book.reconcile("news2", cond("A-01", Priority.LOW, "better"), now=6)
    assert book.by_id[raised.alert.id].state == ACKNOWLEDGED
    (esc,) = book.reconcile("news2", cond("A-01", Priority.HIGH, "worse"), now=7)
    assert esc.event == "priority_raised" and esc.alert.state == ACTIVE and esc.alert.acked_by is None


def test_clearing_resolves_when_not_latching() -> None:
    book = AlarmBook()
    book.reconcile("news2", cond("A-01", Priority.LOW), now=1)
    (ev,) = book.reconcile("news2", {}, now=9)
    assert ev.event == "resolved" and ev.alert.state == RESOLVED and ev.alert.resolved_at == 9
    assert not book.open
    with pytest.raises(AlertError):
        book.acknowledge(ev.alert.id, "x", now=10)


def test_latching_alarm_stays_until_acknowledged() -> None:
    book = AlarmBook(rules=rules(latching=True))
    (raised,) = book.reconcile("trend", cond("A-01", Priority.MEDIUM, kind="trend:news2_rise"), now=1)
    (ev,) = book.reconcile("trend", {}, now=2)
    assert ev.event == "cleared" and ev.alert.state == ACTIVE and ev.alert.condition is False
    assert book.reconcile("trend", {}, now=3) == []  # still latched, no repeat events
    events = book.acknowledge(raised.alert.id, "Dr Rao", now=4)
    assert [e.event for e in events] == ["acknowledged", "resolved"]
    assert not book.open


def test_acknowledged_latching_alarm_resolves_when_condition_clears() -> None:
    book = AlarmBook(rules=rules(latching=True))
    (raised,) = book.reconcile("trend", cond("A-01", Priority.MEDIUM, kind="trend:news2_rise"), now=1)
    book.acknowledge(raised.alert.id, "Dr Rao", now=2)
    (ev,) = book.reconcile("trend", {}, now=3)
    assert ev.event == "resolved"


def test_acknowledge_needs_a_name_and_silence_a_reason_and_a_bound() -> None:
    book = AlarmBook(rules=rules(silence_max=900))
    (ev,) = book.reconcile("news2", cond("A-01", Priority.LOW), now=1)
    with pytest.raises(AlertError):
        book.acknowledge(ev.alert.id, "   ", now=2)
    with pytest.raises(AlertError, match="reason"):
        book.silence(ev.alert.id, "Nurse", "  ", 60, now=2)
    with pytest.raises(AlertError, match="at most 900"):
        book.silence(ev.alert.id, "Nurse", "turning patient", 901, now=2)


def test_silence_expires_and_the_alarm_returns_if_the_condition_holds() -> None:
    book = AlarmBook(rules=rules())
    (raised,) = book.reconcile("news2", cond("A-01", Priority.HIGH), now=0)
    a = raised.alert
    book.acknowledge(a.id, "Nurse", now=1 * S)
    ev = book.silence(a.id, "Nurse", "suctioning", 120, now=2 * S)
    assert ev.event == "silenced" and a.silenced_until == 122 * S and a.silence_reason == "suctioning"
    assert book.tick(now=121 * S) == []
    (back,) = book.tick(now=122 * S)
    assert back.event == "unsilenced" and a.state == ACTIVE and a.acked_by is None and a.silenced_until is None


def test_silenced_alarm_whose_condition_cleared_does_not_return() -> None:
    book = AlarmBook(rules=rules())
    (raised,) = book.reconcile("news2", cond("A-01", Priority.HIGH), now=0)
    book.silence(raised.alert.id, "Nurse", "repositioning probe", 60, now=1)
    (ev,) = book.reconcile("news2", {}, now=2)
    assert ev.event == "resolved"
    assert book.tick(now=120 * S) == []


def test_unacknowledged_high_alarm_escalates_through_the_tiers() -> None:
    book = AlarmBook(rules=rules())
    (raised,) = book.reconcile("news2", cond("A-01", Priority.HIGH), now=0)
    a = raised.alert
    assert a.tier_role == "bedside_nurse"
    assert book.tick(now=59 * S) == []
    (e1,) = book.tick(now=60 * S)
    assert e1.event == "escalated" and a.tier_role == "teleicu_nurse"
    (e2,) = book.tick(now=120 * S)
    assert e2.alert.tier_role == "intensivist"
    assert book.tick(now=600 * S) == []  # no tier above the intensivist


def test_acknowledged_or_silenced_alarms_do_not_escalate_and_low_never_does() -> None:
    book = AlarmBook(rules=rules())
    conds = cond("A-01", Priority.HIGH) | cond("A-02", Priority.HIGH) | cond("A-03", Priority.LOW)
    acked, silenced, _low = book.reconcile("news2", conds, now=0)
    book.acknowledge(acked.alert.id, "Nurse", now=10 * S)
    book.silence(silenced.alert.id, "Nurse", "procedure", 300, now=10 * S)
    assert book.reconcile("news2", conds, now=20 * S) == []
    assert book.tick(now=200 * S) == []


def test_restored_alarms_keep_their_ids_and_new_ones_never_collide() -> None:
    book = AlarmBook()
    (ev,) = book.reconcile("news2", cond("A-01", Priority.LOW), now=1)
    again = AlarmBook()
    again.restore([ev.alert.to_json()])
    (ev2,) = again.reconcile("news2", cond("A-01", Priority.LOW) | cond("A-02", Priority.LOW), now=2)
    assert again.by_id[ev.alert.id] is again.open[("A-01", "news2")]
    assert ev2.alert.id != ev.alert.id and ev2.alert.id > ev.alert.id  # UUIDv7: unique, ordered by when raised
    other_hub = AlarmBook()  # another hub raising at the same moment mints a different id
    (ev3,) = other_hub.reconcile("news2", cond("A-02", Priority.LOW), now=2)
    assert ev3.alert.id not in (ev.alert.id, ev2.alert.id)


def test_a_ward_let_go_leaves_the_book_unchanged_and_the_next_owner_carries_its_alarms_on_under_their_ids() -> None:
    """Hub workers hand a ward's alarms over through the shared state store: ``let_go`` drops them here as they are,
    ``adopt`` takes them up elsewhere, acknowledgement and all, and the same condition raises no second alarm."""
    first = AlarmBook()
    (raised,) = first.reconcile("news2", cond("A-01", Priority.MEDIUM), now=1)
    first.reconcile("limit", {("B-01", "limit:spo2_low"): Condition(subject="B-01", bed="B-01", ward="B", kind="limit:spo2_low",
                                                                    priority=Priority.HIGH, title="t", detail="")}, now=1)  # fmt: skip
    first.acknowledge(raised.alert.id, "Nurse Meena", now=2)
    persisted = [a.to_json() for a in first.open.values()]
    first.touched.clear()
    assert first.let_go("A") == 1
    assert list(first.open) == [("B-01", "limit:spo2_low")] and raised.alert.id not in first.by_id and first.touched == {"A-01"}
    assert raised.alert.state == ACKNOWLEDGED  # let go as it was: nothing resolved, nothing to persist

    second = AlarmBook()
    (own,) = second.reconcile("limit", {("B-01", "limit:spo2_low"): Condition(subject="B-01", bed="B-01", ward="B",
                                                                              kind="limit:spo2_low", priority=Priority.HIGH,
                                                                              title="t", detail="")}, now=3)  # fmt: skip
    assert second.adopt(persisted) == 1  # A's alarm; B-01's condition already has an alarm here: left out
    assert second.by_id[raised.alert.id].acked_by == "Nurse Meena" and second.open[("B-01", "limit:spo2_low")] is own.alert
    assert second.adopt(persisted) == 0  # taken once
    assert second.reconcile("news2", cond("A-01", Priority.MEDIUM), now=4) == []  # carried on, not raised again
    (ev,) = second.reconcile("news2", {}, now=5)
    assert ev.event == "resolved" and ev.alert.id == raised.alert.id
