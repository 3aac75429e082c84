"""The locker's store on SQLite and on PostgreSQL: patients by ABHA or MRN, records written exactly once, consent changes
with their FHIR Consent, refusals after revoke and expiry, share links, sign-in codes, and the append-only access log."""

from __future__ import annotations

import inspect
import json

import pytest
from conftest import Clock
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from records_bridge.services.locker import store as store_module
from records_bridge.services.locker.consent_machine import Role
from records_bridge.services.locker.share_tokens import sign
from records_bridge.services.locker.store import (
    CodeRejected,
    Conflict,
    ConsentIn,
    Forbidden,
    NotFound,
    PatientKey,
    RateLimited,
    RecordIn,
    Store,
    access_log,
    current_revision_of,
)

ABHA = "91123456789012"
DAY = 86_400_000


def record(digest: str = "d1", type_: str = "DischargeSummary", date: str = "2024-04-20") -> RecordIn:
    return RecordIn(type_, date, "SMS Hospital, Jaipur", "Discharge summary", '{"resourceType":"Bundle"}', b"%PDF-1.4 x", digest)


def consent_in(clock: Clock, types: tuple[str, ...] = ("DischargeSummary",), date_from: str = "2024-01-01",
               date_to: str = "2024-12-31", days: int = 7) -> ConsentIn:  # fmt: skip
    return ConsentIn("staff", "intensivist", "Dr Test", "intensivist", "CAREMGT", types, date_from, date_to, "VIEW", clock() + days * DAY)


def test_schema_has_its_own_version_table(store: Store) -> None:
    assert current_revision_of(store.engine) == "0001"


def test_patients_by_abha_or_mrn_and_one_number_one_locker(store: Store, clock: Clock) -> None:
    pid, created = store.register_patient(PatientKey(abha=ABHA), "+919800000001", "Asha", clock())
    assert created
    assert store.register_patient(PatientKey(abha=ABHA, facility="RJ-SMS", mrn="M1"), None, None, clock()) == (pid, False)
    assert store.find_patient(PatientKey(facility="RJ-SMS", mrn="M1")) == pid  # the MRN was added to the same locker
    other, created = store.register_patient(PatientKey(facility="RJ-SMS", mrn="M2"), None, None, clock())
    assert created and other != pid
    with pytest.raises(Conflict, match="two different patients"):
        store.register_patient(PatientKey(abha=ABHA, facility="RJ-SMS", mrn="M2"), None, None, clock())
    with pytest.raises(Conflict, match="another patient's locker"):
        store.register_patient(PatientKey(facility="RJ-SMS", mrn="M2"), "+919800000001", None, clock())


def test_a_record_is_written_exactly_once(store: Store, clock: Clock) -> None:
    created, pid = store.put_record("enc-1-discharge", PatientKey(abha=ABHA), "+919800000001", None, record(), clock())
    assert created
    assert store.put_record("enc-1-discharge", PatientKey(abha=ABHA), "+919800000001", None, record(), clock()) == (False, pid)
    with pytest.raises(Conflict, match="different content"):
        store.put_record("enc-1-discharge", PatientKey(abha=ABHA), None, None, record(digest="d2"), clock())
    assert [r["record_id"] for r in store.records_of(pid)] == ["enc-1-discharge"]
    assert store.record("enc-1-discharge")["pdf"] == b"%PDF-1.4 x"


def _granted(store: Store, clock: Clock, **kw: object) -> tuple[int, str]:
    _, pid = store.put_record("r1", PatientKey(abha=ABHA), "+919800000001", None, record(), clock())
    c = store.request_consent(pid, consent_in(clock, **kw), clock())  # type: ignore[arg-type]
    assert c["fhir"]["status"] == "proposed"
    store.act(c["consent_id"], "grant", Role.PATIENT, "patient", clock(), pid)
    return pid, c["consent_id"]


def test_fetch_under_a_granted_consent_then_refused_after_revoke(store: Store, clock: Clock) -> None:
    pid, cid = _granted(store, clock)
    assert store.consent(cid)["fhir"]["status"] == "active"
    assert store.fetch_under_consent("r1", cid, "intensivist", clock())["record_id"] == "r1"
    store.act(cid, "revoke", Role.PATIENT, "patient", clock(), pid)
    c = store.consent(cid)
    assert c["state"] == "REVOKED" and c["fhir"]["status"] == "inactive" and c["fhir"]["meta"]["tag"][0]["code"] == "REVOKED"
    with pytest.raises(Forbidden, match="revoked") as e:
        store.fetch_under_consent("r1", cid, "intensivist", clock())
    assert e.value.code == "revoked"
    log = store.access_log_of(pid)
    assert [(x["action"], x["outcome"]) for x in log[:3]] == [("record.fetch", "refused"), ("consent.revoke", "allowed"),
                                                              ("record.fetch", "allowed")]  # fmt: skip
    assert log[0]["reason"] == "the patient revoked this consent"


def test_fetch_after_expiry_is_refused_and_the_sweeper_closes_it(store: Store, clock: Clock) -> None:
    pid, cid = _granted(store, clock, days=1)
    clock.advance(DAY)
    with pytest.raises(Forbidden) as e:
        store.fetch_under_consent("r1", cid, "intensivist", clock())
    assert e.value.code == "expired"
    assert store.expire_due(clock()) == [cid]
    assert store.consent(cid)["state"] == "EXPIRED" and store.consent(cid)["fhir"]["status"] == "inactive"
    assert store.expire_due(clock()) == []
    with pytest.raises(Conflict, match="already expired"):
        store.act(cid, "revoke", Role.PATIENT, "patient", clock(), pid)
    assert store.access_log_of(pid)[0]["outcome"] == "refused"


@pytest.mark.parametrize(("kw", "code"), [
    ({"types": ("Prescription",)}, "type_not_covered"),
    ({"date_from": "2024-05-01"}, "date_outside_range"),
])  # fmt: skip
def test_a_consent_without_the_type_or_date_is_refused(store: Store, clock: Clock, kw: dict, code: str) -> None:
    pid, cid = _granted(store, clock, **kw)
    with pytest.raises(Forbidden) as e:
        store.fetch_under_consent("r1", cid, "intensivist", clock())
    assert e.value.code == code
    assert store.access_log_of(pid)[0]["reason"] == e.value.reason


def test_refusals_by_the_table_and_a_grant_after_expiry(store: Store, clock: Clock) -> None:
    _, pid = store.put_record("r1", PatientKey(abha=ABHA), None, None, record(), clock())
    c = store.request_consent(pid, consent_in(clock, days=1), clock())
    with pytest.raises(Conflict, match="only the patient"):
        store.act(c["consent_id"], "grant", Role.CLINICIAN, "intensivist", clock())
    with pytest.raises(NotFound):
        store.act(c["consent_id"], "grant", Role.PATIENT, "patient", clock(), pid + 1)  # another patient's
    clock.advance(DAY)
    with pytest.raises(Conflict, match="already expired"):
        store.act(c["consent_id"], "grant", Role.PATIENT, "patient", clock(), pid)
    assert store.consent(c["consent_id"])["state"] == "EXPIRED"


def test_share_links_open_until_revoked_or_expired(store: Store, clock: Clock) -> None:
    _, pid = store.put_record("r1", PatientKey(abha=ABHA), None, None, record(), clock())
    link = store.create_link(pid, "r1", clock() + 3_600_000, clock(), lambda i, e: sign(b"s" * 32, i, e))
    assert store.open_link(link["link_id"], clock(), "viewer")["record_id"] == "r1"
    with pytest.raises(NotFound):
        store.create_link(pid + 1, "r1", clock() + 1, clock(), lambda i, e: "t")
    store.revoke_link(pid, link["link_id"], clock())
    with pytest.raises(Forbidden, match="revoked"):
        store.open_link(link["link_id"], clock(), "viewer")
    other = store.create_link(pid, "r1", clock() + 60_000, clock(), lambda i, e: "t")
    clock.advance(60_000)
    with pytest.raises(Forbidden, match="expired"):
        store.open_link(other["link_id"], clock(), "viewer")
    actions = [(x["action"], x["outcome"]) for x in store.access_log_of(pid)]
    assert actions.count(("share.view", "refused")) == 2 and ("share.view", "allowed") in actions


def test_codes_sessions_and_the_send_limit(store: Store, clock: Clock) -> None:
    pid, _ = store.register_patient(PatientKey(abha=ABHA), "+919800000001", None, clock())
    code = store.send_code("+919800000001", clock())
    assert code is not None and len(code) == 6
    assert store.send_code("+919800000009", clock()) is None  # no locker: nothing to text, and the answer looks the same
    with pytest.raises(CodeRejected, match="4 tries left"):
        store.verify_code("+919800000001", "000000" if code != "000000" else "111111", clock())
    assert store.verify_code("+919800000001", code, clock()) == pid
    with pytest.raises(CodeRejected, match="used"):
        store.verify_code("+919800000001", code, clock())
    store.send_code("+919800000001", clock())
    store.send_code("+919800000001", clock())
    with pytest.raises(RateLimited) as e:
        store.send_code("+919800000001", clock())
    assert e.value.retry_after_s == 15 * 60
    with store.engine.connect() as conn:  # hashed at rest
        assert code not in json.dumps([list(r) for r in conn.execute(text("SELECT * FROM locker_otps")).all()])
    token = store.new_session(pid, clock(), 60_000)
    assert store.session_patient(token, clock()) == pid
    assert store.session_patient(token, clock() + 60_000) is None
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM locker_sessions WHERE token_hash = :t"), {"t": token}).scalar() == 0
    store.end_session(token)
    assert store.session_patient(token, clock()) is None


def test_spent_codes_are_deleted_once_their_send_window_closes_and_not_before(store: Store, clock: Clock) -> None:
    store.register_patient(PatientKey(abha=ABHA), "+919800000001", None, clock())
    for _ in range(3):
        store.send_code("+919800000001", clock())
    store.send_code("+919800000009", clock())  # no locker: a row all the same (its sends are counted)
    clock.advance(5 * 60_000)  # the codes have expired, but the window still counts three sends
    assert store.prune_codes(clock()) == 0
    with pytest.raises(RateLimited):
        store.send_code("+919800000001", clock())
    clock.advance(10 * 60_000)  # the window has closed
    assert store.prune_codes(clock()) == 2
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM locker_otps")).scalar() == 0
    assert store.send_code("+919800000001", clock()) is not None


def test_the_access_log_is_append_only(store: Store, clock: Clock) -> None:
    _granted(store, clock)
    names = {n for n, _ in inspect.getmembers(Store, inspect.isfunction)}
    assert not {n for n in names if any(w in n.lower() for w in ("delete", "remove", "edit", "purge"))} - {"revoke_link"}
    source = inspect.getsource(store_module)
    assert "update(access_log" not in source and "delete(access_log" not in source and "access_log.delete" not in source
    for statement in (update(access_log).values(reason="changed"), delete(access_log)):
        with pytest.raises(DBAPIError, match="append-only"):
            with store.engine.begin() as conn:
                conn.execute(statement)
    assert all(x["reason"] != "changed" for x in store.access_log_of(1))
