"""The consent state machine: every (state, action, role) triple, from the table and against an expectation list written
here independently (so a wrong entry in the table fails), and the access decision's refusals in order."""

from __future__ import annotations

from itertools import product

import pytest

from records_bridge.services.locker.consent_machine import TABLE, Action, Moved, Refused, Role, State, decide
from records_bridge.services.locker.coverage import ConsentView, RecordView, check_access

# Written by hand from the spec: the only moves there are. Everything else must be refused.
EXPECTED_MOVES = {
    ("REQUESTED", "grant", "patient"): "GRANTED",
    ("REQUESTED", "deny", "patient"): "DENIED",
    ("REQUESTED", "expire", "system"): "EXPIRED",
    ("GRANTED", "revoke", "patient"): "REVOKED",
    ("GRANTED", "expire", "system"): "EXPIRED",
}
# Words each refusal must contain, by the rule that refuses it.
FINAL_STATES = {"DENIED", "REVOKED", "EXPIRED"}


def test_the_table_has_every_triple_and_nothing_else() -> None:
    assert set(TABLE) == set(product(State, Action, Role))
    assert len(TABLE) == 5 * 4 * 3


@pytest.mark.parametrize(("state", "action", "role"), sorted(TABLE, key=str))
def test_each_entry_matches_the_independent_expectation(state: State, action: Action, role: Role) -> None:
    outcome = decide(state.value, action.value, role.value)
    assert outcome == TABLE[(state, action, role)]
    expected = EXPECTED_MOVES.get((state.value, action.value, role.value))
    if expected is not None:
        assert outcome == Moved(State(expected))
        return
    assert isinstance(outcome, Refused)
    assert outcome.reason and len(outcome.reason) < 200
    if state.value in FINAL_STATES:
        assert state.value.lower() in outcome.reason and "new request" in outcome.reason
    elif role is Role.CLINICIAN:
        assert "only the patient" in outcome.reason
    elif action is Action.EXPIRE:
        assert "expires by its date" in outcome.reason


def test_every_expected_move_is_in_the_table() -> None:
    moves = {(s.value, a.value, r.value): o.state.value for (s, a, r), o in TABLE.items() if isinstance(o, Moved)}
    assert moves == EXPECTED_MOVES


def test_unknown_names_are_errors() -> None:
    with pytest.raises(ValueError):
        decide("GRANTED", "delete", "patient")


def consent(**kw: object) -> ConsentView:
    base = dict(consent_id="c", patient_id=1, state="GRANTED", types=("DischargeSummary",), date_from="2024-01-01",
                date_to="2024-12-31", expires_ms=2_000, requester_kind="staff", requester_id="dr", requested_by="dr")  # fmt: skip
    return ConsentView(**(base | kw))  # type: ignore[arg-type]


REC = RecordView("r1", 1, "DischargeSummary", "2024-05-01")


@pytest.mark.parametrize(("view", "user", "now", "code"), [
    (None, "dr", 1_000, "no_consent"),
    (consent(patient_id=2), "dr", 1_000, "other_patient"),
    (consent(), "someone-else", 1_000, "not_requester"),
    (consent(state="REQUESTED"), "dr", 1_000, "not_granted"),
    (consent(state="DENIED"), "dr", 1_000, "not_granted"),
    (consent(state="REVOKED"), "dr", 1_000, "revoked"),
    (consent(state="EXPIRED"), "dr", 1_000, "expired"),
    (consent(), "dr", 2_000, "expired"),  # past its expiry, not yet swept
    (consent(types=("Prescription",)), "dr", 1_000, "type_not_covered"),
    (consent(date_from="2024-06-01"), "dr", 1_000, "date_outside_range"),
    (consent(date_to="2024-04-30"), "dr", 1_000, "date_outside_range"),
])  # fmt: skip
def test_access_refusals(view: ConsentView | None, user: str, now: int, code: str) -> None:
    denial = check_access(view, REC, user, now)
    assert denial is not None and denial.code == code and denial.reason


def test_access_allowed_on_the_range_edges_and_for_a_facility_requester() -> None:
    assert check_access(consent(date_from="2024-05-01", date_to="2024-05-01"), REC, "dr", 1_999) is None
    assert check_access(consent(requester_kind="facility", requester_id="RJ-1", requested_by="dr"), REC, "other", 1_000) is None
