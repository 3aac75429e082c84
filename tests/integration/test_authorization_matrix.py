"""The authorisation matrix: every route and WebSocket of the hub, crossed with every kind of caller.

The expected outcome of each cell comes from the policy declared below (which
permission a route needs, whether it is about one ward's bed or alarm, and what
each role may do), written from the identity issue's role table, not read from
the code under test. The routes come from the running hub: every path and
method of its OpenAPI document, the routes it serves outside that document, and
its WebSockets. A route the table does not name fails the test.

Callers: no credentials, a token the hub never issued, an expired session, and
each role (a ward nurse of ward A; the other roles see every ward), each against
a bed and an alarm of ward A and of ward B.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from support import USERS, HubProcess, feed_news2_alarm, get_json, post_json, token, wait_until
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from ingest.auth import sessions
from teleicu.admin import open_state

pytestmark = pytest.mark.integration

# --- the declared policy -------------------------------------------------------------------------------------------

PUBLIC, SIGNED_IN, AGENT, OWN_CREDENTIAL = "public", "signed in", "agent", "its own credential"
#: what each role may do (the issue's table: admin administers and reads the audit log, never patient data; the viewer
#: sees KPIs only; the intensivist changes clinical settings; nurses act on alarms; a ward nurse only in her wards)
GRANTS = {
    "admin": {"admin_agents", "admin_users", "read_audit", "view_kpi", "read_census"},
    "intensivist": {"view_patients", "act_on_alarms", "clinical_settings", "view_kpi", "admit_patients", "chart", "read_census"},
    "teleicu_nurse": {"view_patients", "act_on_alarms", "view_kpi", "admit_patients", "chart", "read_census"},
    "ward_nurse": {"view_patients", "act_on_alarms", "admit_patients", "chart", "read_census"},
    "viewer": {"view_kpi", "read_census"},
    "records": {"read_events", "read_census"},  # the records bridge's account: the outbox and the wards' bed counts
}
#: (method, path) -> (what it needs, what it is about: "bed", "alarm", "encounter", "patient", "ward" (a list a ward may
#: narrow) or None)
POLICY: dict[tuple[str, str], tuple[str, str | None]] = {
    ("GET", "/"): (PUBLIC, None),
    ("GET", "/login"): (PUBLIC, None),
    ("GET", "/bed/{bed}"): (PUBLIC, None),  # the page; its data comes from the API
    ("GET", "/kpi"): (PUBLIC, None),  # the page; its figures come from /api/kpi
    ("GET", "/api/kpi"): ("view_kpi", None),
    ("GET", "/api/census"): ("read_census", None),
    ("GET", "/docs"): (PUBLIC, None),
    ("GET", "/openapi.json"): (PUBLIC, None),
    ("GET", "/healthz"): (PUBLIC, None),
    ("GET", "/api/vocabulary"): (PUBLIC, None),  # labels and units, no patient data
    ("POST", "/api/auth/login"): (OWN_CREDENTIAL, None),  # a password: the matrix sends a wrong one
    ("POST", "/api/auth/refresh"): (OWN_CREDENTIAL, None),  # a refresh token: the matrix sends none
    ("POST", "/api/auth/logout"): (SIGNED_IN, None),
    ("GET", "/api/auth/me"): (SIGNED_IN, None),
    ("GET", "/api/beds"): ("view_patients", "ward"),
    ("GET", "/api/beds/{bed}"): ("view_patients", "bed"),
    ("PUT", "/api/beds/{bed}/settings"): ("clinical_settings", "bed"),
    ("PUT", "/api/beds/{bed}/limits"): ("clinical_settings", "bed"),
    ("GET", "/api/beds/{bed}/limits"): ("view_patients", "bed"),
    ("GET", "/api/beds/{bed}/video"): ("view_patients", "bed"),
    ("GET", "/api/beds/{bed}/trend"): ("view_patients", "bed"),
    ("POST", "/api/beds/{bed}/chart"): ("chart", "bed"),
    ("POST", "/api/admissions"): ("admit_patients", "bed"),  # the bed is in the body
    ("GET", "/api/encounters"): ("view_patients", None),  # a list: each entry filtered by ward
    ("GET", "/api/encounters/{encounter_id}"): ("view_patients", "encounter"),
    ("GET", "/api/encounters/{encounter_id}/trend"): ("view_patients", "encounter"),
    ("GET", "/api/encounters/{encounter_id}/alerts"): ("view_patients", "encounter"),
    ("POST", "/api/encounters/{encounter_id}/transfer"): ("admit_patients", "encounter"),
    ("POST", "/api/encounters/{encounter_id}/discharge"): ("admit_patients", "encounter"),
    ("POST", "/api/encounters/{encounter_id}/cancel"): ("admit_patients", "encounter"),
    ("POST", "/api/encounters/{encounter_id}/reopen"): ("admit_patients", "encounter"),
    ("GET", "/api/patients/{patient_id}"): ("view_patients", "patient"),
    ("PUT", "/api/patients/{patient_id}"): ("admit_patients", "patient"),
    ("GET", "/api/events"): ("read_events", None),
    ("GET", "/api/gaps"): ("view_patients", None),
    ("GET", "/api/alerts"): ("view_patients", "ward"),
    ("POST", "/api/alerts/{alert_id}/ack"): ("act_on_alarms", "alarm"),
    ("POST", "/api/alerts/{alert_id}/silence"): ("act_on_alarms", "alarm"),
    ("GET", "/api/alerts/{alert_id}/history"): ("view_patients", "alarm"),
    ("GET", "/api/alarm-stats"): ("view_kpi", None),
    ("GET", "/api/agents"): ("admin_agents", None),
    ("DELETE", "/api/agents/{agent}"): ("admin_agents", None),
    ("GET", "/api/unmapped"): ("admin_agents", None),
    ("GET", "/api/audit"): ("read_audit", None),
    ("GET", "/api/audit/verify"): ("read_audit", None),
    ("GET", "/api/stats"): ("view_kpi", None),
    ("GET", "/metrics"): ("view_kpi", None),
    ("WS", "/ws/console"): ("view_patients", "ward"),
    ("WS", "/ws/edge"): (AGENT, None),
    ("WS", "/ws/waves"): ("view_patients", "ward"),  # ?bed=: a bed of another ward is refused like another ward's feed
    ("WS", "/ws/video"): ("view_patients", "ward"),  # ?bed=, as /ws/waves
    ("WS", "/ws/edge/video"): (AGENT, None),
}
#: request bodies by path suffix; "{ward}" becomes the cell's ward
BODIES = {"/settings": {"spo2_scale": 1}, "/limits": {"param": "hr", "low": 35}, "/silence": {"reason": "turning the patient", "seconds": 60},
          "/admissions": {"patient": {"mrn": "M-{ward}-9", "name": "Test Patient"}, "bed": "{ward}-02"},
          "/transfer": {"bed": "{ward}-03"}, "/discharge": {"outcome": "discharged"}, "/chart": {"param": "o2", "value": "oxygen"},
          "/patients/": {"mrn": "M-{ward}-1", "name": "Test Patient {ward}"}}  # fmt: skip
# --- the hub under test --------------------------------------------------------------------------------------------


def routes_of(hub: HubProcess) -> set[tuple[str, str]]:
    """Every route the hub serves: its OpenAPI document, plus what it serves outside it (pages, metrics, sockets)."""
    doc = get_json(f"{hub.base}/openapi.json", as_=None)
    served = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    hidden = {("GET", "/"), ("GET", "/login"), ("GET", "/bed/{bed}"), ("GET", "/kpi"), ("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/metrics"),
              ("WS", "/ws/console"), ("WS", "/ws/edge"), ("WS", "/ws/waves"), ("WS", "/ws/video"), ("WS", "/ws/edge/video")}  # fmt: skip
    return served | hidden


def expired_token(hub: HubProcess) -> str:
    conn = open_state(hub.db)
    try:
        long_ago = time.time_ns() // 1_000_000 - 24 * 3_600_000
        conn.execute("BEGIN IMMEDIATE")
        t = sessions.open_session(conn, "intensivist", long_ago, "test")
        conn.execute("COMMIT")
    finally:
        conn.close()
    return t.access


def call(hub: HubProcess, method: str, path: str, headers: dict[str, str], ward: str) -> int:
    url = f"{hub.base}{path}"
    if method == "WS":
        ws_url = url.replace("http://", "ws://")
        try:
            with connect(ws_url, additional_headers=headers, open_timeout=10) as ws:
                first = json.loads(ws.recv(timeout=10)) if "/ws/console" in path else None
                return 101 if first is None or first["type"] == "snapshot" else 0
        except InvalidStatus as refused:
            return refused.response.status_code
    body = next((b for suffix, b in BODIES.items() if suffix in path.split("?")[0] and method != "GET"), None)
    if body is not None:
        body = json.loads(json.dumps(body).replace("{ward}", ward))
    if path == "/api/auth/login":
        body = {"username": "nobody-by-this-name", "password": "wrong"}
    status, _ = post_json(url, body, method=method, as_=None, headers=headers)
    return status


# --- the matrix ----------------------------------------------------------------------------------------------------


def test_every_route_and_socket_answers_every_caller_as_the_policy_says(hub: HubProcess) -> None:
    feed_news2_alarm(hub, "A", "A-01")
    feed_news2_alarm(hub, "B", "B-01")

    def news2_alarms() -> dict[str, str] | None:
        found = {a["bed"]: a["id"] for a in get_json(f"{hub.base}/api/alerts")["alerts"] if a["kind"] == "news2"}
        return found if {"A-01", "B-01"} <= set(found) else None

    alarms = wait_until(news2_alarms, "a NEWS2 alarm on each bed", timeout=30)
    encounters, patients = {}, {}
    for ward in ("A", "B"):
        for bed in (f"{ward}-02", f"{ward}-03"):  # on the census too: an admission's and a transfer's bed
            feed_news2_alarm(hub, ward, bed, agent=f"edge-{bed}")
        status, body = post_json(f"{hub.base}/api/admissions", {"patient": {"mrn": f"M-{ward}-1", "name": "Test Patient"}, "bed": f"{ward}-01"})
        assert status == 201, body
        encounters[ward], patients[ward] = body["encounter"]["encounter_id"], body["patient"]["patient_id"]
    routes = routes_of(hub)
    missing = routes - set(POLICY)
    assert not missing, f"routes the policy table does not name (add them, with what they need): {sorted(missing)}"
    assert set(POLICY) <= routes, f"the table names routes the hub does not serve: {sorted(set(POLICY) - routes)}"

    role_of = {user: role for user, (role, _wards) in USERS.items()}
    callers: dict[str, dict[str, str]] = {
        "nobody": {},
        "forged": {"Authorization": "Bearer tia_thisTokenWasNeverIssuedByTheHub0000000000000"},
        "expired": {"Authorization": f"Bearer {expired_token(hub)}"},
        **{user: {"Authorization": f"Bearer {token(hub.base, user)}"}
           for user in ("admin", "intensivist", "teleicu-nurse", "nurse-a", "viewer", "records-bridge")},
    }
    failures: list[str] = []
    cells = 0
    for (method, template), (needs, about) in sorted(POLICY.items()):
        for ward in ("A", "B") if about is not None else ("A",):
            path = (template.replace("{bed}", f"{ward}-01").replace("{alert_id}", alarms[f"{ward}-01"]).replace("{agent}", "edge-nobody")
                    .replace("{encounter_id}", encounters[ward]).replace("{patient_id}", patients[ward]))  # fmt: skip
            if template in ("/ws/waves", "/ws/video"):
                path += f"?bed={ward}-01"
            elif about == "ward":
                path += f"?ward={ward}"
            if "/trend" in path:
                path += ("&" if "?" in path else "?") + "param=hr"
            for caller, headers in callers.items():
                if method == "POST" and template == "/api/auth/logout" and caller not in ("nobody", "forged", "expired"):
                    continue  # signing out would end the session the other cells use; test_sign_in covers it
                got = call(hub, method, path, headers, ward)
                cells += 1
                want = expected(method, needs, about, role_of.get(caller), ward)
                if not want(got):
                    failures.append(f"{method} {path} as {caller}: got {got}, expected {want.__doc__}")
    assert not failures, f"{len(failures)} of {cells} cells differ from the policy:\n" + "\n".join(failures)
    assert cells >= len(callers) * len(POLICY)


def expected(method: str, needs: str, about: str | None, role: str | None, ward: str) -> Callable[[int], bool]:
    """The predicate this cell's status must satisfy; its docstring says which, for the failure message."""
    if needs == OWN_CREDENTIAL:  # whatever the caller's session, a wrong credential is refused
        return bad_credential
    if needs == PUBLIC or (needs == SIGNED_IN and role is not None):
        return allowed
    if needs == AGENT:  # people's sessions never open the agents' socket
        return refused
    if role is None:  # nobody, a forged token, an expired session
        return refused if method == "WS" else unauthenticated
    if needs not in GRANTS[role]:
        return refused if method == "WS" else forbidden
    if role == "ward_nurse" and ward != "A" and about is not None:
        if about in ("bed", "encounter", "patient") or (about == "alarm" and needs == "view_patients"):
            return hidden
        return refused if method == "WS" else forbidden
    return allowed


def allowed(s: int) -> bool:
    """allowed (not 401 or 403; a WebSocket opens)"""
    return s not in (401, 403) and s < 500


def bad_credential(s: int) -> bool:
    """401, or 429 once one address has tried too often"""
    return s in (401, 429)


def unauthenticated(s: int) -> bool:
    """401"""
    return s == 401


def forbidden(s: int) -> bool:
    """403"""
    return s == 403


def refused(s: int) -> bool:
    """a refused WebSocket handshake (HTTP 403)"""
    return s == 403


def hidden(s: int) -> bool:
    """404: a bed, encounter or patient (or alarm history) outside her wards is answered like an unknown one"""
    return s == 404
