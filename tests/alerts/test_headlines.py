"""One headline per patient: the grouping rule on its own, and through the engine as a patient deteriorates."""

from __future__ import annotations

from alerts.headline import SCORES_ONLY, headlines, label_of, regroup
from alerts.lifecycle import Alert
from test_artefact_alarming import Ward

T0 = 1_800_000_000_000


def alarm(i: str, kind: str, priority: str = "medium", bed: str = "A-01", raised: int = 0, category: str = "physiological") -> Alert:
    return Alert(id=i, subject=bed, bed=bed, ward="A", kind=kind, category=category, priority=priority, state="active",
                 title=f"{kind} title", detail="", raised=T0 + raised, updated=T0 + raised)  # fmt: skip


def test_a_beds_physiological_alarms_form_one_group_headed_by_the_highest_priority_most_specific() -> None:
    alarms = [
        alarm("1", "news2", "high", raised=1),
        alarm("2", "limit:spo2_low", "high", raised=5),  # same priority as NEWS2, but a limit says what to treat
        alarm("3", "trend:spo2_fall", "medium", raised=0),
        alarm("4", "limit:rr_high", "medium", raised=2),
        alarm("5", "technical:probe_off", "low", category="technical"),
        alarm("6", "limit:hr_high", "medium", bed="A-02"),
    ]
    got = headlines(alarms)
    assert set(got) == {"A-01/physiological", "A-01/technical:probe_off", "A-02/physiological"}
    h = got["A-01/physiological"]
    assert h.head == "2" and h.parts == ("2", "1", "4", "3") and h.label == "Respiratory deterioration"
    assert got["A-01/technical:probe_off"].parts == ("5",)  # technical alarms stay separate
    assert got["A-02/physiological"].label == "Heart rate (ECG) high"  # a group of one: its kind's label


def test_labels_name_the_systems_in_a_fixed_order_and_scores_alone_say_so() -> None:
    assert label_of([alarm("1", "limit:hr_high"), alarm("2", "limit:spo2_low")]) == "Deterioration: respiratory and cardiovascular"
    assert label_of([alarm("1", "news2"), alarm("2", "qsofa"), alarm("3", "trend:news2_rise")]) == SCORES_ONLY
    assert label_of([alarm("1", "news2"), alarm("2", "limit:temp_high")]) == "Temperature deterioration"


def test_the_rule_is_deterministic_whatever_the_order() -> None:
    alarms = [alarm(str(i), k, "medium", raised=0) for i, k in enumerate(["limit:rr_high", "limit:spo2_low", "news2"])]
    assert headlines(alarms) == headlines(list(reversed(alarms)))
    assert headlines(alarms)["A-01/physiological"].head == "0"  # equal priority, specificity and time: lowest id


def test_regroup_reports_only_alarms_whose_grouping_changed_without_another_event() -> None:
    a, b = alarm("1", "limit:spo2_low", "high"), alarm("2", "limit:rr_high")
    book = {(x.bed, x.kind): x for x in (a, b)}
    evs = regroup(book, None, [], T0)
    assert {e.alert.id for e in evs} == {"1", "2"} and all(e.event == "regrouped" for e in evs)
    assert (a.group, a.headline, a.group_head, a.group_size) == ("A-01/physiological", "Respiratory deterioration", True, 2)
    assert not regroup(book, None, [], T0 + 1)  # nothing changed: nothing to report


def test_a_deteriorating_patient_gets_one_headline_while_each_alarm_keeps_its_lifecycle() -> None:
    w = Ward(n=2)
    w.set(0, spo2=84, rr=32)  # hypoxia and tachypnoea: SpO2 low, RR high, NEWS2 high band
    w.run(0, 20)
    mine = [a for a in w.engine.book.open.values() if a.bed == w.beds[0]]
    physio = [a for a in mine if a.category == "physiological"]
    assert {a.kind for a in physio} >= {"limit:spo2_low", "limit:rr_high", "news2"}
    assert {a.headline for a in physio} == {"Respiratory deterioration"} and {a.group_size for a in physio} == {len(physio)}
    (head,) = [a for a in physio if a.group_head]
    assert head.kind == "limit:spo2_low"  # high priority, and a limit
    # the other bed has nothing
    assert not [a for a in w.engine.book.open.values() if a.bed == w.beds[1]]
    # RR recovers: its alarm resolves on its own; the others are regrouped (the group shrinks), not raised again
    w.set(0, rr=16)
    before = len(w.log)
    w.run(21, 40)
    later = [(e.event, e.alert.kind) for _, e in w.log[before:] if e.alert.bed == w.beds[0]]
    assert ("resolved", "limit:rr_high") in later and not [k for ev, k in later if ev == "raised"]
    assert ("regrouped", "limit:spo2_low") in later
    assert w.engine.book.open[(w.beds[0], "limit:spo2_low")].group_size == len([a for a in w.engine.book.open.values()
                                                                               if a.bed == w.beds[0] and a.category == "physiological"])
