"""The locker's API over real sockets (uvicorn on a free port) with a real hub signing staff in: records pushed exactly
once, sign-in by texted code, consents requested, granted, revoked and expired, fetches refused with their reason and
logged, share links with QR codes, and an access log the API can only append to."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import Clock
from locker_support import ABHA, MOBILE, PDF, Locker, record_body, running_locker
from support import HubProcess, token, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hub(module_hub: HubProcess) -> HubProcess:
    return module_hub  # one hub for the module (tests/conftest.py)


@pytest.fixture
def locker(locker_db: str, hub: HubProcess, tmp_path: Path, clock: Clock) -> Iterator[Locker]:
    with running_locker(locker_db, hub.base, tmp_path, clock, sweep_s=0.05) as lk:
        yield lk


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def staff(hub: HubProcess, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(hub.base, user)}"}


def expires(clock: Clock, hours: float) -> str:
    return (datetime.fromtimestamp(clock() / 1000, UTC) + timedelta(hours=hours)).isoformat()


def consent_body(clock: Clock, hours: float = 24, **kw: object) -> dict:
    return {"patient": {"abha": ABHA}, "purpose": "CAREMGT", "types": ["DischargeSummary"], "date_from": "2024-01-01",
            "date_to": "2024-12-31", "mode": "VIEW", "expires_at": expires(clock, hours)} | kw  # fmt: skip


def put(http: httpx.Client, locker: Locker, hub: HubProcess, record_id: str, body: dict, user: str = "records-bridge") -> httpx.Response:
    return http.put(f"{locker.base}/api/records/{record_id}", json=body, headers=staff(hub, user))


def test_records_are_pushed_exactly_once_by_the_records_role(locker: Locker, hub: HubProcess, http: httpx.Client) -> None:
    assert put(http, locker, hub, "enc-1", record_body()).status_code == 201
    again = put(http, locker, hub, "enc-1", record_body())
    assert again.status_code == 200 and again.json() == {"record_id": "enc-1", "created": False}
    differs = put(http, locker, hub, "enc-1", record_body(date="2024-04-21"))
    assert differs.status_code == 409 and differs.headers["content-type"] == "application/problem+json"
    assert "new id" in differs.json()["detail"] and differs.json()["code"] == "record_differs"
    assert put(http, locker, hub, "enc-2", record_body(), user="intensivist").status_code == 403
    assert http.put(f"{locker.base}/api/records/enc-2", json=record_body()).status_code == 401
    bad = put(http, locker, hub, "enc-2", record_body() | {"patient": {"abha": "91-1234"}})
    assert bad.status_code == 400 and "ABHA number has 14 digits" in bad.json()["detail"]
    not_pdf = put(http, locker, hub, "enc-2", record_body(pdf=b"hello"))
    assert not_pdf.status_code == 400 and "%PDF-" in not_pdf.json()["detail"]
    bad_fhir = record_body()
    bad_fhir["bundle"]["entry"][0]["resource"]["status"] = 42
    assert put(http, locker, hub, "enc-2", bad_fhir).status_code == 400
    assert put(http, locker, hub, "enc-2", record_body(pdf=None, bundle=False)).status_code == 400
    huge = http.put(f"{locker.base}/api/records/enc-2", content=b"{" + b" " * (13 * 1024 * 1024) + b"}",
                    headers=staff(hub, "records-bridge") | {"Content-Type": "application/json"})  # fmt: skip
    assert huge.status_code == 413
    assert put(http, locker, hub, "bad id!", record_body()).status_code in (400, 404)


def test_sign_in_by_texted_code(locker: Locker, hub: HubProcess, http: httpx.Client) -> None:
    assert put(http, locker, hub, "enc-1", record_body()).status_code == 201
    unknown = http.post(f"{locker.base}/api/patient/code", json={"mobile": "9800000099"})
    assert unknown.status_code == 202 and not locker.codes_sent("+919800000099")  # same answer, nothing texted
    assert http.get(f"{locker.base}/api/patient/records").status_code == 401
    http.post(f"{locker.base}/api/patient/code", json={"mobile": "98290 12345"})
    code = locker.codes_sent()[-1]
    wrong = http.post(f"{locker.base}/api/patient/session", json={"mobile": MOBILE, "code": "000000" if code != "000000" else "111111"})
    assert wrong.status_code == 401 and "4 tries left" in wrong.json()["detail"]
    ok = http.post(f"{locker.base}/api/patient/session", json={"mobile": MOBILE, "code": code})
    assert ok.status_code == 200 and "locker_session" in ok.headers["set-cookie"] and "HttpOnly" in ok.headers["set-cookie"]
    assert [r["record_id"] for r in http.get(f"{locker.base}/api/patient/records").json()["records"]] == ["enc-1"]  # the cookie
    with httpx.Client(timeout=10) as other:  # the bearer form, for an app
        assert other.get(f"{locker.base}/api/patient/me", headers={"Authorization": f"Bearer {ok.json()['token']}"}).json()["abha"] == ABHA
    for _ in range(2):  # three codes in the window so far
        assert http.post(f"{locker.base}/api/patient/code", json={"mobile": MOBILE}).status_code == 202
    limited = http.post(f"{locker.base}/api/patient/code", json={"mobile": MOBILE})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    http.post(f"{locker.base}/api/patient/signout", json={})
    assert http.get(f"{locker.base}/api/patient/records").status_code == 401


def test_consent_grant_fetch_revoke_refused_and_logged(locker: Locker, hub: HubProcess, http: httpx.Client, clock: Clock) -> None:
    assert put(http, locker, hub, "enc-1", record_body()).status_code == 201
    assert put(http, locker, hub, "rx-1", record_body("rx-1", type_="Prescription")).status_code == 201
    locker.sign_in(http)
    asked = http.post(f"{locker.base}/api/consents", json=consent_body(clock), headers=staff(hub, "intensivist"))
    assert asked.status_code == 201, asked.text
    cid = asked.json()["consent_id"]
    assert any("asks to see your DischargeSummary" in m["text"] for m in locker.sms.sent())
    fetch = f"{locker.base}/api/records/enc-1?consent={cid}"
    early = http.get(fetch, headers=staff(hub, "intensivist"))
    assert early.status_code == 403 and early.json()["code"] == "not_granted"
    assert http.post(f"{locker.base}/api/patient/consents/{cid}/grant", json={}).json()["state"] == "GRANTED"
    got = http.get(fetch, headers=staff(hub, "intensivist"))
    assert got.status_code == 200 and got.json()["bundle"]["type"] == "document"
    assert http.get(fetch + "&format=pdf", headers=staff(hub, "intensivist")).content == PDF
    other = http.get(fetch, headers=staff(hub, "teleicu-nurse"))
    assert other.status_code == 403 and other.json()["code"] == "not_requester"
    wrong_type = http.get(f"{locker.base}/api/records/rx-1?consent={cid}", headers=staff(hub, "intensivist"))
    assert wrong_type.status_code == 403 and wrong_type.json()["code"] == "type_not_covered"
    assert http.get(f"{locker.base}/api/records/enc-1?consent=nope", headers=staff(hub, "intensivist")).json()["code"] == "no_consent"
    assert http.get(fetch, headers=staff(hub, "viewer")).status_code == 403  # not a clinician
    assert http.post(f"{locker.base}/api/patient/consents/{cid}/revoke", json={}).json()["state"] == "REVOKED"
    after = http.get(fetch, headers=staff(hub, "intensivist"))
    assert after.status_code == 403 and after.json()["code"] == "revoked" and "revoked" in after.json()["detail"]
    again = http.post(f"{locker.base}/api/patient/consents/{cid}/grant", json={})
    assert again.status_code == 409 and "new request" in again.json()["detail"]
    fhir = http.get(f"{locker.base}/api/consents/{cid}/fhir", headers=staff(hub, "intensivist")).json()
    assert fhir["resourceType"] == "Consent" and fhir["status"] == "inactive"
    log = http.get(f"{locker.base}/api/patient/access-log").json()["entries"]
    fetches = [(e["outcome"], e["reason"]) for e in log if e["action"] == "record.fetch"]
    assert ("refused", "the patient revoked this consent") in fetches and any(o == "allowed" for o, _ in fetches)
    assert {"consent.request", "consent.grant", "consent.revoke"} <= {e["action"] for e in log}


def test_a_fetch_after_expiry_is_refused_and_the_sweeper_closes_the_consent(locker: Locker, hub: HubProcess, http: httpx.Client,
                                                                            clock: Clock) -> None:  # fmt: skip
    assert put(http, locker, hub, "enc-1", record_body()).status_code == 201
    locker.sign_in(http)
    cid = http.post(f"{locker.base}/api/consents", json=consent_body(clock, hours=1), headers=staff(hub, "intensivist")).json()["consent_id"]
    http.post(f"{locker.base}/api/patient/consents/{cid}/grant", json={})
    assert http.get(f"{locker.base}/api/records/enc-1?consent={cid}", headers=staff(hub, "intensivist")).status_code == 200
    clock.advance(3_600_000)
    expired = http.get(f"{locker.base}/api/records/enc-1?consent={cid}", headers=staff(hub, "intensivist"))
    assert expired.status_code == 403 and expired.json()["code"] == "expired"
    wait_until(lambda: http.get(f"{locker.base}/api/consents/{cid}", headers=staff(hub, "intensivist")).json()["state"] == "EXPIRED",
               "the sweeper to expire the consent")  # fmt: skip
    assert http.get(f"{locker.base}/api/patient/access-log").status_code == 401  # the session (30 minutes) ended too
    locker.sign_in(http)
    log = http.get(f"{locker.base}/api/patient/access-log").json()["entries"]
    assert any(e["action"] == "consent.expire" for e in log)
    assert any(e["action"] == "record.fetch" and e["outcome"] == "refused" and "expired" in e["reason"] for e in log)


def test_a_consent_outside_the_record_date_is_refused(locker: Locker, hub: HubProcess, http: httpx.Client, clock: Clock) -> None:
    assert put(http, locker, hub, "enc-1", record_body(date="2023-12-31")).status_code == 201
    locker.sign_in(http)
    cid = http.post(f"{locker.base}/api/consents", json=consent_body(clock), headers=staff(hub, "intensivist")).json()["consent_id"]
    http.post(f"{locker.base}/api/patient/consents/{cid}/grant", json={})
    r = http.get(f"{locker.base}/api/records/enc-1?consent={cid}", headers=staff(hub, "intensivist"))
    assert r.status_code == 403 and r.json()["code"] == "date_outside_range" and "2023-12-31" in r.json()["detail"]
    bad = http.post(f"{locker.base}/api/consents", json=consent_body(clock, purpose="FUN"), headers=staff(hub, "intensivist"))
    assert bad.status_code == 400 and "purpose" in bad.json()["detail"]
    nobody = http.post(f"{locker.base}/api/consents", json=consent_body(clock, patient={"abha": "12-3456-7890-1234"}),
                       headers=staff(hub, "intensivist"))  # fmt: skip
    assert nobody.status_code == 404 and "needs a locker" in nobody.json()["detail"]


def test_share_links_with_a_qr_code(locker: Locker, hub: HubProcess, http: httpx.Client, clock: Clock) -> None:
    assert put(http, locker, hub, "enc-1", record_body()).status_code == 201
    locker.sign_in(http)
    link = http.post(f"{locker.base}/api/patient/share-links", json={"record_id": "enc-1", "minutes": 30})
    assert link.status_code == 201, link.text
    url = link.json()["url"]
    qr = http.get(locker.base + link.json()["qr_svg"])
    assert qr.status_code == 200 and qr.headers["content-type"] == "image/svg+xml" and b"<svg" in qr.content
    with httpx.Client(timeout=10) as doctor:  # no sign-in
        shown = doctor.get(url)
        assert shown.status_code == 200 and shown.headers["content-type"] == "application/pdf" and shown.content == PDF
        assert doctor.get(url + "?format=json").json()["record_id"] == "enc-1"
        tampered = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
        assert doctor.get(tampered).status_code == 404
        http.post(f"{locker.base}/api/patient/share-links/{link.json()['link_id']}/revoke", json={})
        revoked = doctor.get(url)
        assert revoked.status_code == 403 and "revoked" in revoked.json()["detail"]
        short = http.post(f"{locker.base}/api/patient/share-links", json={"record_id": "enc-1", "minutes": 5}).json()
        clock.advance(5 * 60_000)
        assert doctor.get(short["url"]).status_code == 403
    assert http.post(f"{locker.base}/api/patient/share-links", json={"record_id": "someone-elses"}).status_code == 404
    log = http.get(f"{locker.base}/api/patient/access-log").json()["entries"]
    views = [e["outcome"] for e in log if e["action"] == "share.view"]
    assert views.count("allowed") == 2 and views.count("refused") == 2


def test_the_api_offers_no_way_to_change_the_access_log(locker: Locker, hub: HubProcess, http: httpx.Client) -> None:
    routes = [(r.path, m) for r in _routes(locker.app.routes) for m in getattr(r, "methods", ()) or ()]
    assert ("/api/records/{record_id}", "PUT") in routes  # the walk reaches the routers' routes
    assert [(p, m) for p, m in routes if "log" in p] == [("/api/patient/access-log", "GET")]
    assert not [(p, m) for p, m in routes if m in ("DELETE", "PATCH")]
    put(http, locker, hub, "enc-1", record_body())
    locker.sign_in(http)
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        assert http.request(method, f"{locker.base}/api/patient/access-log", json={}).status_code == 405


def _routes(routes: list) -> list:
    """Every route, through the included routers (FastAPI wraps each in an object that keeps ``original_router``)."""
    out = []
    for r in routes:
        inner = getattr(r, "original_router", None)
        out += _routes(inner.routes) if inner is not None else [r]
    return out


def test_the_page_is_served_with_a_strict_policy(locker: Locker, http: httpx.Client) -> None:
    page = http.get(locker.base + "/")
    assert page.status_code == 200 and "My health locker" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "<script>" not in page.text
    assert http.get(locker.base + "/static/locker.js").status_code == 200
    assert http.get(locker.base + "/api/patient/me").headers["cache-control"] == "no-store"


def test_pdf_limit(locker: Locker, hub: HubProcess, http: httpx.Client) -> None:
    from records_bridge.services.locker.bodies import MAX_PDF

    big = record_body(pdf=b"%PDF-" + b"x" * MAX_PDF, bundle=False)
    r = put(http, locker, hub, "big", big)
    assert r.status_code in (400, 413) and str(MAX_PDF) in r.json()["detail"]
    assert base64.b64decode(record_body()["pdf"]) == PDF


def test_who_gave_a_locker_its_mobile_number_is_on_the_patients_access_log(locker: Locker, hub: HubProcess, http: httpx.Client) -> None:
    assert put(http, locker, hub, "enc-1", record_body(mobile=None)).status_code == 201  # the bridge files it: no mobile yet
    given = http.post(f"{locker.base}/api/patients", json={"patient": {"abha": ABHA}, "mobile": MOBILE}, headers=staff(hub, "nurse-a"))
    assert given.status_code == 200 and given.json()["created"] is False
    locker.sign_in(http)
    log = http.get(f"{locker.base}/api/patient/access-log").json()["entries"]
    registered = [e for e in log if e["action"] == "patient.register"]
    assert len(registered) == 1 and "ward_nurse" in registered[0]["actor"] and MOBILE[-4:] in registered[0]["reason"], log


def test_one_address_cannot_text_every_number(locker: Locker, http: httpx.Client) -> None:
    answers = [http.post(f"{locker.base}/api/patient/code", json={"mobile": f"98000{i:05d}"}) for i in range(12)]
    assert [a.status_code for a in answers[:10]] == [202] * 10  # numbers with no locker: texted nothing, same answer
    assert answers[-1].status_code == 429 and int(answers[-1].headers["retry-after"]) >= 1
    assert "from this address" in answers[-1].json()["detail"]
