"""Alarm lifecycle: one alarm per (bed, kind) that raises, escalates, updates, acknowledges, resolves."""

import pytest

from alerts.lifecycle import ACKNOWLEDGED, ACTIVE, RESOLVED, AlarmBook, AlertError, Condition, Priority


def cond(bed: str, p: Priority, title: str = "t") -> Condition:
    return Condition(bed=bed, ward="A", kind="news2", priority=p, title=title, detail="")


def test_one_condition_is_one_alarm_that_updates() -> None:
    book = AlarmBook()
    ev = book.reconcile("news2", {"A-01": cond("A-01", Priority.MEDIUM)}, now=1)
    assert [e.event for e in ev] == ["raised"]
    assert book.reconcile("news2", {"A-01": cond("A-01", Priority.MEDIUM)}, now=2) == []
    ev = book.reconcile("news2", {"A-01": cond("A-01", Priority.HIGH, "worse")}, now=3)
    assert [e.event for e in ev] == ["escalated"]
    assert len(book.open) == 1 and ev[0].alert.priority == "high" and ev[0].alert.id == 1


def test_acknowledge_records_who_and_when_and_escalation_reactivates() -> None:
    book = AlarmBook()
    (raised,) = book.reconcile("news2", {"A-01": cond("A-01", Priority.MEDIUM)}, now=1)
    ev = book.acknowledge(raised.alert.id, "Nurse Meena", now=5)
    assert ev.alert.state == ACKNOWLEDGED and ev.alert.acked_by == "Nurse Meena" and ev.alert.acked_at == 5
    # a lower or equal priority keeps it acknowledged
    book.reconcile("news2", {"A-01": cond("A-01", Priority.LOW, "better")}, now=6)
    assert book.by_id[raised.alert.id].state == ACKNOWLEDGED
    # a higher priority than what was acknowledged needs attention again
    (esc,) = book.reconcile("news2", {"A-01": cond("A-01", Priority.HIGH, "worse")}, now=7)
    assert esc.event == "escalated" and esc.alert.state == ACTIVE and esc.alert.acked_by is None


def test_clearing_resolves_and_forgets() -> None:
    book = AlarmBook()
    book.reconcile("news2", {"A-01": cond("A-01", Priority.LOW)}, now=1)
    (ev,) = book.reconcile("news2", {}, now=9)
    assert ev.event == "resolved" and ev.alert.state == RESOLVED and ev.alert.resolved_at == 9
    assert not book.open
    with pytest.raises(AlertError):
        book.acknowledge(ev.alert.id, "x", now=10)


def test_acknowledge_needs_a_name() -> None:
    book = AlarmBook()
    (ev,) = book.reconcile("news2", {"A-01": cond("A-01", Priority.LOW)}, now=1)
    with pytest.raises(AlertError):
        book.acknowledge(ev.alert.id, "   ", now=2)


def test_restore_continues_ids() -> None:
    book = AlarmBook()
    (ev,) = book.reconcile("news2", {"A-01": cond("A-01", Priority.LOW)}, now=1)
    again = AlarmBook()
    again.restore([ev.alert.to_json()])
    (ev2,) = again.reconcile("news2", {"A-01": cond("A-01", Priority.LOW), "A-02": cond("A-02", Priority.LOW)}, now=2)
    assert ev2.alert.id == 2 and ("A-01", "news2") in again.open
