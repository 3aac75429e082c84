"""The EHR's FHIR API through its HTTP layer (FastAPI's TestClient), on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Ehr
from ehr_resources import LOINC, MRN, observation, patient
from fhir_stay import CTX, whole_stay
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from records_bridge.fhir import writes_for


def put(ehr: Ehr, resource: dict[str, Any], secret: str | None = None) -> Any:
    return ehr.http.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=ehr.headers(secret))


def rows(ehr: Ehr, sql: str) -> int:
    with ehr.store.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def assert_outcome(r: Any, status: int, words: str = "") -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"][0]["severity"] == "error"
    assert words.lower() in body["issue"][0]["diagnostics"].lower(), body


# ------------------------------------------------------------------------------------------------ create, update, read


def test_put_creates_updates_and_a_replay_makes_no_version(ehr: Ehr) -> None:
    r = put(ehr, patient())
    assert r.status_code == 201
    assert r.json()["meta"]["versionId"] == "1" and r.headers["etag"] == 'W/"1"'
    assert r.headers["location"].endswith("/fhir/Patient/p1/_history/1")
    first = r.json()["meta"]["lastUpdated"]

    again = put(ehr, patient())
    assert again.status_code == 200 and again.json()["meta"] == {"versionId": "1", "lastUpdated": first}
    other_meta = put(ehr, patient(meta={"versionId": "7", "lastUpdated": "2020-01-01T00:00:00Z"}))
    assert other_meta.status_code == 200 and other_meta.json()["meta"]["versionId"] == "1"
    assert rows(ehr, "SELECT count(*) FROM ehr_history") == 1

    changed = put(ehr, patient(gender="male"))
    assert changed.status_code == 200 and changed.json()["meta"]["versionId"] == "2"
    got = ehr.http.get("/fhir/Patient/p1", headers=ehr.headers())
    assert got.status_code == 200 and got.json()["gender"] == "male" and got.headers["etag"] == 'W/"2"'
    assert rows(ehr, "SELECT count(*) FROM ehr_resources") == 1
    assert rows(ehr, "SELECT count(*) FROM ehr_history") == 2
    assert rows(ehr, "SELECT max(version_id) FROM ehr_resources") == 2
    profiled = put(ehr, patient(gender="male", meta={"profile": ["https://nrces.in/ndhm/fhir/r4/StructureDefinition/Patient"]}))
    assert profiled.json()["meta"]["versionId"] == "3"  # a new profile is a change, though it lives in meta
    assert profiled.json()["meta"]["profile"] == ["https://nrces.in/ndhm/fhir/r4/StructureDefinition/Patient"]


def test_abstract_types_are_not_resources_one_can_store(ehr: Ehr) -> None:
    for kind in ("Resource", "DomainResource"):
        r = ehr.http.put(f"/fhir/{kind}/x", json={"resourceType": kind, "id": "x"}, headers=ehr.headers())
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome", (kind, r.text)


def test_every_write_the_bridge_makes_is_accepted_and_a_replay_changes_nothing(ehr: Ehr) -> None:
    writes = [w for event in whole_stay() for w in writes_for(event, CTX)]
    for w in writes:  # each write twice, as when the bridge's answer was lost and it sends again
        first = ehr.http.request(w.method, f"/fhir/{w.path}", json=w.resource, headers=ehr.headers())
        assert first.status_code in (200, 201), (w.path, first.text)
        versions = rows(ehr, "SELECT count(*) FROM ehr_history")
        again = ehr.http.request(w.method, f"/fhir/{w.path}", json=w.resource, headers=ehr.headers())
        assert again.status_code == 200, (w.path, again.text)
        assert again.json()["meta"] == first.json()["meta"]
        assert rows(ehr, "SELECT count(*) FROM ehr_history") == versions
    assert rows(ehr, "SELECT count(*) FROM ehr_resources") == len({w.path for w in writes})
    kinds = {w.resource["resourceType"] for w in writes}
    assert {"Patient", "Encounter", "Observation", "Flag", "Bundle", "DocumentReference"} <= kinds


def test_read_of_an_unknown_resource_is_404(ehr: Ehr) -> None:
    assert_outcome(ehr.http.get("/fhir/Patient/nobody", headers=ehr.headers()), 404, "Patient/nobody")
    assert_outcome(ehr.http.get("/fhir/Nonsense/x", headers=ehr.headers()), 404, "unknown resource type")


def test_post_creates_under_a_server_id(ehr: Ehr) -> None:
    r = ehr.http.post("/fhir/Patient", json=patient(ident="ignored"), headers=ehr.headers())
    assert r.status_code == 201
    ident = r.json()["id"]
    assert ident != "ignored" and r.headers["location"].endswith(f"/fhir/Patient/{ident}/_history/1")
    assert ehr.http.get(f"/fhir/Patient/{ident}", headers=ehr.headers()).json()["gender"] == "female"


def test_conditional_create_with_no_one_and_two_matches(ehr: Ehr) -> None:
    cond = ehr.headers(**{"If-None-Exist": f"identifier={MRN}|MRN-9"})
    made = ehr.http.post("/fhir/Patient", json=patient(None, mrn="MRN-9"), headers=cond)
    assert made.status_code == 201
    found = ehr.http.post("/fhir/Patient", json=patient(None, mrn="MRN-9", gender="male"), headers=cond)
    assert found.status_code == 200 and found.json()["id"] == made.json()["id"] and found.json()["gender"] == "female"
    assert rows(ehr, "SELECT count(*) FROM ehr_resources") == 1

    put(ehr, patient("twin-a", mrn="MRN-T"))
    put(ehr, patient("twin-b", mrn="MRN-T"))
    twice = ehr.http.post(
        "/fhir/Patient", json=patient(None, mrn="MRN-T"), headers=ehr.headers(**{"If-None-Exist": f"identifier={MRN}|MRN-T"})
    )
    assert_outcome(twice, 412, "more than one")
    bad = ehr.http.post("/fhir/Patient", json=patient(None), headers=ehr.headers(**{"If-None-Exist": "colour=blue"}))
    assert_outcome(bad, 400, "If-None-Exist")
    assert rows(ehr, "SELECT count(*) FROM ehr_resources") == 3


# ---------------------------------------------------------------------------------------------------------- search


def search(ehr: Ehr, query: str, secret: str | None = None) -> dict[str, Any]:
    r = ehr.http.get(f"/fhir/{query}", headers=ehr.headers(secret))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "searchset"
    return body


def ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


@pytest.fixture
def charted(ehr: Ehr) -> Ehr:
    """Observations of two patients, two codes, at 10:00, 11:00 and 12:00 on 1 May 2024, and one on 2 May."""
    for i, (pat, enc) in enumerate([("p1", "e1"), ("p2", "e2")]):
        for h in (10, 11, 12):
            put(ehr, observation(f"hr-{pat}-{h}", pat, enc, "8867-4", f"2024-05-01T{h}:00:00Z", 80 + i))
            put(ehr, observation(f"rr-{pat}-{h}", pat, enc, "9279-1", f"2024-05-01T{h}:00:00+00:00", 20 + i))
    put(ehr, observation("hr-p1-next-day", "p1", "e1", "8867-4", "2024-05-02T09:30:00+05:30"))
    return ehr


def test_search_by_patient_encounter_and_code(charted: Ehr) -> None:
    ehr = charted
    assert search(ehr, "Observation?patient=p1")["total"] == 7
    assert search(ehr, "Observation?patient=Patient/p2")["total"] == 6
    assert search(ehr, "Observation?encounter=e2")["total"] == 6
    assert sorted(ids(search(ehr, f"Observation?patient=p2&code={LOINC}|8867-4"))) == ["hr-p2-10", "hr-p2-11", "hr-p2-12"]
    assert search(ehr, "Observation?code=9279-1")["total"] == 6
    assert search(ehr, "Observation?code=9279-1,8867-4&patient=p1")["total"] == 7
    assert search(ehr, "Observation?code=http://snomed.info/sct|9279-1")["total"] == 0
    assert search(ehr, "Observation?code=|9279-1")["total"] == 0  # "no system": every coding here has one
    assert search(ehr, f"Observation?code={LOINC}|")["total"] == 13
    assert search(ehr, "Observation?patient=nobody")["total"] == 0
    assert "entry" not in search(ehr, "Observation?patient=nobody")


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("2024-05-01", {10, 11, 12}),
        ("eq2024-05-01T11:00", {11}),
        ("ge2024-05-01T11:00:00Z", {11, 12, 4}),  # 4: 2024-05-02T04:00Z, the next day's
        ("gt2024-05-01T11:00", {12, 4}),
        ("le2024-05-01T11:00", {10, 11}),
        ("lt2024-05-01T11:00:00Z", {10}),
        ("lt2024-05-01T16:30:00+05:30", {10}),
        ("eq2024-05", {10, 11, 12, 4}),
        ("ge2024-05-02", {4}),
        ("lt2024", set()),
    ],
)
def test_search_by_date(charted: Ehr, date: str, expected: set[int]) -> None:
    found = search(charted, f"Observation?patient=p1&code=8867-4&date={date.replace('+', '%2B')}")
    hours = {int(e["resource"]["effectiveDateTime"][11:13]) for e in found.get("entry", [])}
    hours = {4 if h == 9 else h for h in hours}  # the next day's is 09:30+05:30
    assert hours == expected


def test_search_by_a_date_range(charted: Ehr) -> None:
    found = search(charted, "Observation?date=ge2024-05-01T11:00Z&date=lt2024-05-01T12:00Z")
    assert sorted(ids(found)) == ["hr-p1-11", "hr-p2-11", "rr-p1-11", "rr-p2-11"]


def test_encounter_flag_and_document_searches(ehr: Ehr) -> None:
    for w in [w for event in whole_stay() for w in writes_for(event, CTX)]:
        ehr.http.request(w.method, f"/fhir/{w.path}", json=w.resource, headers=ehr.headers())
    enc = search(ehr, "Encounter?date=ge2024-05-01")["entry"][0]["resource"]
    pid = enc["subject"]["reference"].split("/")[1]
    assert search(ehr, f"Encounter?patient={pid}")["total"] == 1
    assert search(ehr, f"Flag?patient={pid}&encounter={enc['id']}")["total"] == 1
    assert search(ehr, "Flag?date=lt2024-05-01")["total"] == 0
    docs = search(ehr, f"DocumentReference?patient={pid}&encounter={enc['id']}")
    assert docs["total"] == 1
    coding = docs["entry"][0]["resource"]["type"]["coding"][0]
    assert search(ehr, f"DocumentReference?code={coding['system']}|{coding['code']}")["total"] == 1


def test_paging_visits_every_match_once(charted: Ehr) -> None:
    ehr = charted
    for i in range(20):
        put(ehr, observation(f"more-{i:02}", "p1", "e1", "8867-4", f"2024-05-03T{i:02}:00:00Z"))
    seen: list[str] = []
    page = search(ehr, "Observation?patient=p1&_count=6")
    pages = 1
    while True:
        assert page["total"] == 27
        assert len(page.get("entry", [])) <= 6
        seen += ids(page)
        if pages == 2:  # a resource of page one changes meanwhile: it keeps its place
            put(ehr, observation("hr-p1-10", "p1", "e1", "8867-4", "2024-05-01T10:00:00Z", value=99))
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not nxt:
            break
        page = search(ehr, nxt[0].split("/fhir/", 1)[1])
        pages += 1
    assert pages == 5 and len(seen) == 27 and len(set(seen)) == 27
    assert search(ehr, "Observation?patient=p1&_count=0") == {"resourceType": "Bundle", "type": "searchset", "total": 27,
                                                               "link": [{"relation": "self", "url": "http://testserver/fhir/Observation?patient=p1&_count=0"}]}  # fmt: skip
    assert len(ids(search(ehr, "Observation?_count=100000"))) == 33  # cut to 500


@pytest.mark.parametrize(
    "query",
    ["Observation?colour=blue", "Observation?code:text=pulse", "Observation?date=xx2024", "Observation?date=2024-13-01",
     "Observation?_count=-1", "Observation?_count=many", "Observation?patient=Group/x", "Observation?patient=", "Observation?_sort=date",
     "Observation?_cursor=1e3", "Patient?code=x", "Observation?code=|"],
)  # fmt: skip
def test_bad_searches_are_400(ehr: Ehr, query: str) -> None:
    assert_outcome(ehr.http.get(f"/fhir/{query}", headers=ehr.headers()), 400)


# ---------------------------------------------------------------------------------------------------------- errors


def test_auth(ehr: Ehr) -> None:
    assert_outcome(ehr.http.get("/fhir/Patient/p1"), 401, "bearer")
    assert_outcome(ehr.http.get("/fhir/Patient/p1", headers={"Authorization": "Bearer ehr_wrong"}), 401, "not valid")
    assert_outcome(ehr.http.get("/fhir/Patient/p1", headers={"Authorization": f"Basic {ehr.writer}"}), 401)
    assert_outcome(put(ehr, patient(), secret="ehr_wrong"), 401)
    assert_outcome(put(ehr, patient(), secret=ehr.reader), 403, "reader")
    assert_outcome(ehr.http.post("/fhir/Patient", json=patient(None), headers=ehr.headers(ehr.reader)), 403)
    assert put(ehr, patient()).status_code == 201
    assert ehr.http.get("/fhir/Patient/p1", headers=ehr.headers(ehr.reader)).status_code == 200
    assert search(ehr, "Patient?identifier=MRN-1", secret=ehr.reader)["total"] == 1
    assert rows(ehr, "SELECT count(*) FROM ehr_history") == 1


def test_metadata_and_health_need_no_secret(ehr: Ehr) -> None:
    cap = ehr.http.get("/fhir/metadata")
    assert cap.status_code == 200 and cap.json()["resourceType"] == "CapabilityStatement" and cap.json()["fhirVersion"] == "4.0.1"
    assert ehr.http.get("/healthz").json() == {"status": "ok"}


def test_every_error_is_an_operation_outcome(ehr: Ehr) -> None:
    h = ehr.headers()
    p = patient()
    assert_outcome(ehr.http.put("/fhir/Patient/p1", content=b"{not json", headers=h), 400, "not JSON")
    assert_outcome(ehr.http.put("/fhir/Patient/p1", content=b"[1, 2]", headers=h), 400, "JSON object")
    assert_outcome(ehr.http.put("/fhir/Patient/p1", content="\u00e9".encode("latin-1"), headers=h), 400, "not JSON")
    assert_outcome(ehr.http.put("/fhir/Patient/p1", json={"id": "p1"}, headers=h), 400, "resourceType")
    assert_outcome(ehr.http.put("/fhir/Patient/p1", json={k: v for k, v in p.items() if k != "id"}, headers=h), 400, "no id")
    assert_outcome(ehr.http.put("/fhir/Patient/p2", json=p, headers=h), 422, "not the URL")
    assert_outcome(ehr.http.put("/fhir/Encounter/p1", json=p, headers=h), 422, "Patient")
    assert_outcome(ehr.http.put("/fhir/Patient/" + "x" * 65, json=p, headers=h), 400, "not a FHIR id")
    assert_outcome(ehr.http.put("/fhir/Patient/p1", json=p, headers=h | {"Content-Type": "text/plain"}), 415, "fhir+json")
    assert_outcome(ehr.http.put("/fhir/Patient/p1", json=p | {"gender": 7}, headers=h), 400, "gender")
    assert_outcome(ehr.http.put("/fhir/Patient/p1", json=p | {"colour": "blue"}, headers=h), 400, "colour")
    assert_outcome(ehr.http.post("/fhir/Patient", json=observation("o"), headers=h), 422)
    assert_outcome(ehr.http.delete("/fhir/Patient/p1", headers=h), 405, "DELETE")
    assert_outcome(ehr.http.patch("/fhir/Patient/p1", json=p, headers=h), 405)
    assert_outcome(ehr.http.get("/nowhere", headers=h), 404, "no such endpoint")
    assert_outcome(ehr.http.get("/fhir/Patient/p1/_history/1", headers=h), 404)
    assert_outcome(ehr.http.put("/fhir/HumanName/p1", json=p | {"resourceType": "HumanName"}, headers=h), 404, "unknown resource type")
    big = p | {"text": {"status": "generated", "div": "<div>" + "x" * (8 * 1024 * 1024) + "</div>"}}
    assert_outcome(ehr.http.put("/fhir/Patient/p1", json=big, headers=h), 413, "limit")
    assert rows(ehr, "SELECT count(*) FROM ehr_resources") == 0


def test_a_large_valid_bundle_fits(ehr: Ehr) -> None:
    """A discharge Bundle with a sizeable PDF (about 3 MB in base64) is stored whole."""
    writes = [w for w in writes_for(whole_stay()[10], CTX) if w.resource["resourceType"] == "DocumentReference"]
    doc = writes[0].resource
    doc["content"][0]["attachment"]["data"] = "QUJD" * (750 * 1024)
    r = put(ehr, doc)
    assert r.status_code == 201, r.text[:500]
    assert len(ehr.http.get(f"/fhir/DocumentReference/{doc['id']}", headers=ehr.headers()).content) > 3_000_000


_NAMES = st.sampled_from(["patient", "encounter", "code", "date", "identifier", "_count", "_cursor", "_format", "code:text", "_sort"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["Observation", "Encounter", "Flag", "Patient", "DocumentReference"]),
       items=st.lists(st.tuples(st.one_of(_NAMES, st.text(max_size=8)), st.text(max_size=30)), max_size=5))  # fmt: skip
def test_any_query_string_is_answered_200_or_400(ehr: Ehr, kind: str, items: list[tuple[str, str]]) -> None:
    r = ehr.http.get(f"/fhir/{kind}", params=items, headers=ehr.headers())
    assert r.status_code in (200, 400), r.text
    assert r.json()["resourceType"] == ("Bundle" if r.status_code == 200 else "OperationOutcome")


def test_nul_characters_are_refused_not_a_500(ehr: Ehr) -> None:
    assert_outcome(put(ehr, patient(gender="fe\u0000male")), 400, "NUL")
    assert_outcome(put(ehr, patient(mrn="MRN\u00001")), 400, "NUL")
    assert_outcome(ehr.http.get("/fhir/Observation", params={"code": "a\u0000b"}, headers=ehr.headers()), 400, "control")


def test_deep_nesting_is_400(ehr: Ehr) -> None:
    deep = '{"resourceType":"Patient","id":"p1","extension":' + "[" * 5000 + "]" * 5000 + "}"
    assert_outcome(ehr.http.put("/fhir/Patient/p1", content=deep.encode(), headers=ehr.headers()), 400)
    deeper = '{"resourceType":"Patient","id":"p1","x":' + '{"a":' * 300 + '"\\u0000"' + "}" * 300 + "}"
    assert_outcome(ehr.http.put("/fhir/Patient/p1", content=deeper.encode(), headers=ehr.headers()), 400, "nested")
