"""Signing in, on a real hub: sessions, their cookies, refresh and sign-out, lockout after repeated failures, headers.

Everything here is what a browser or an API client meets; the audit log is read
from the hub's own file afterwards, and checked with ``teleicu audit verify``.
"""

from __future__ import annotations

import http.cookies
import json
import sqlite3
import subprocess
import urllib.request

import pytest
from support import (PASSWORD, HubProcess, console_connect, feed_news2_alarm, get_json, post_json, sign_in, start_hub, teleicu,
                     wait_until)
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.integration


def raw(method: str, url: str, body: dict | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict, list[tuple[str, str]]]:
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **(headers or {})}, method=method)  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null"), resp.getheaders()
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null"), err.headers.items()


def audit(hub: HubProcess, action: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(hub.db) as db:
        return db.execute("SELECT actor, target, detail FROM audit_log WHERE action = ? ORDER BY seq", (action,)).fetchall()


def test_sign_in_sets_strict_cookies_refresh_rotates_and_sign_out_ends_the_session(hub: HubProcess) -> None:
    status, body, headers = raw("POST", f"{hub.base}/api/auth/login", {"username": "nurse-a", "password": PASSWORD})
    assert status == 200 and body["user"]["role"] == "ward_nurse" and body["user"]["wards"] == ["A"]
    cookies = [v for k, v in headers if k.lower() == "set-cookie"]
    assert len(cookies) == 2
    for c in cookies:
        attrs = {a.strip().split("=")[0].lower() for a in c.split(";")[1:]}
        assert {"secure", "httponly", "samesite", "path", "max-age"} <= attrs and "samesite=strict" in c.lower(), c
    jar = http.cookies.SimpleCookie()
    for c in cookies:
        jar.load(c)
    assert jar["teleicu_refresh"]["path"] == "/api/auth"  # the refresh token is sent to /api/auth only
    access = {"Authorization": f"Bearer {body['access_token']}"}
    assert get_json(f"{hub.base}/api/auth/me", as_=None, headers=access)["username"] == "nurse-a"
    # refresh: a new pair; the old refresh token and the old session are spent
    status, renewed, _ = raw("POST", f"{hub.base}/api/auth/refresh", {"refresh_token": body["refresh_token"]})
    assert status == 200 and renewed["access_token"] != body["access_token"]
    assert raw("POST", f"{hub.base}/api/auth/refresh", {"refresh_token": body["refresh_token"]})[0] == 401
    assert raw("GET", f"{hub.base}/api/auth/me", headers=access)[0] == 401
    # sign-out ends the new session
    new = {"Authorization": f"Bearer {renewed['access_token']}"}
    assert raw("POST", f"{hub.base}/api/auth/logout", headers=new)[0] == 200
    assert raw("GET", f"{hub.base}/api/beds", headers=new)[0] == 401
    assert [a for a, _t, _d in wait_until(lambda: audit(hub, "auth.sign_out"), "the sign-out audited", 10)] == ["nurse-a"]


def test_a_live_console_feed_lives_on_through_a_renewal_and_ends_with_the_sign_out(hub: HubProcess) -> None:
    from websockets.sync.client import connect

    status, body, _ = raw("POST", f"{hub.base}/api/auth/login", {"username": "intensivist", "password": PASSWORD})
    assert status == 200
    with connect(f"ws://127.0.0.1:{hub.port}/ws/console", additional_headers={"Authorization": f"Bearer {body['access_token']}"}) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"
        status, renewed, _ = raw("POST", f"{hub.base}/api/auth/refresh", {"refresh_token": body["refresh_token"]})
        assert status == 200
        heard = [json.loads(ws.recv(timeout=10))["type"] for _ in range(3)]  # three heartbeats: the session was checked
        assert "heartbeat" in heard, heard
        assert raw("POST", f"{hub.base}/api/auth/logout", headers={"Authorization": f"Bearer {renewed['access_token']}"})[0] == 200
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_repeated_failures_lock_the_account_and_the_lock_is_audited(hub: HubProcess) -> None:
    answers = [sign_in(hub.base, "teleicu-nurse", f"wrong password {i}") for i in range(5)]
    assert all(s == 401 and b["detail"] == "wrong user name or password" for s, b in answers), answers
    status, body = sign_in(hub.base, "teleicu-nurse", PASSWORD)  # the right password, too late
    assert status == 401 and "locked" in body["detail"], body
    assert sign_in(hub.base, "nobody-at-all", "whatever it is")[1]["detail"] == "wrong user name or password"  # no hint who exists
    locked = wait_until(lambda: audit(hub, "auth.locked"), "the lock in the audit log", timeout=10)
    assert [(a, t) for a, t, _d in locked] == [("teleicu-nurse", "user:teleicu-nurse")]
    failed = wait_until(lambda: len(audit(hub, "auth.sign_in_failed")) >= 7 and audit(hub, "auth.sign_in_failed"), "the failures", 10)
    assert [json.loads(d)["why"] for _a, _t, d in failed][:5] == ["wrong password"] * 5
    # an admin sets a new password: the account is open again
    r = teleicu("users", "passwd", "teleicu-nurse", "--password-stdin", "--db", str(hub.db), stdin="a brand new passphrase\n")
    assert r.returncode == 0, r.stderr
    assert sign_in(hub.base, "teleicu-nurse", "a brand new passphrase")[0] == 200


def test_one_address_is_limited_to_ten_failed_attempts_a_minute(tmp_path) -> None:
    hub = start_hub(tmp_path)
    try:
        # a shift change behind one hospital NAT: sign-ins that work cost the address nothing
        assert [sign_in(hub.base, "intensivist")[0] for _ in range(15)] == [200] * 15
        statuses = [sign_in(hub.base, "viewer", "wrong, but who is counting")[0] for _ in range(12)]
        assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429], statuses
        # once the failures are spent the right password is refused the same way: a refusal tells a guesser nothing
        assert sign_in(hub.base, "intensivist")[0] == 429
    finally:
        hub.stop()


def test_disabling_a_user_closes_her_live_console_within_seconds(hub: HubProcess) -> None:
    with console_connect(hub, as_="nurse-b") as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"
        r = teleicu("users", "disable", "nurse-b", "--db", str(hub.db))
        assert r.returncode == 0, r.stderr
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert sign_in(hub.base, "nurse-b", PASSWORD)[0] == 401


def test_security_headers_and_no_patient_data_without_a_session(hub: HubProcess) -> None:
    for path in ("/", "/login", "/api/beds", "/healthz", "/docs"):
        status, _body, headers = raw("GET", f"{hub.base}{path}") if path.startswith("/api") else _page(f"{hub.base}{path}")
        h = {k.lower(): v for k, v in headers}
        assert "script-src 'self'" in h["content-security-policy"] and "unsafe-inline" not in h["content-security-policy"]
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY" and h["referrer-policy"] == "no-referrer"
        if path.startswith("/api"):
            assert status == 401 and h["cache-control"] == "no-store"
    # a foreign page cannot act with a clinician's cookie (the cookie is SameSite=Strict, and the Origin is checked too)
    status, body, _ = raw("POST", f"{hub.base}/api/auth/login", {"username": "intensivist", "password": PASSWORD})
    cookie = {"Cookie": f"teleicu_session={body['access_token']}", "Origin": "https://evil.example"}
    assert raw("PUT", f"{hub.base}/api/beds/A-01/settings", {"spo2_scale": 2}, cookie)[0] == 403
    assert post_json(f"{hub.base}/api/auth/me", None, method="GET", as_=None)[0] == 401


def _page(url: str) -> tuple[int, None, list[tuple[str, str]]]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, None, resp.getheaders()


def test_the_audit_chain_of_a_real_run_verifies_and_names_a_tampered_entry(hub: HubProcess) -> None:
    for _ in range(3):
        assert sign_in(hub.base, "intensivist")[0] == 200
    sign_in(hub.base, "intensivist", "not my password")
    wait_until(lambda: len(audit(hub, "auth.sign_in")) >= 3 and audit(hub, "auth.sign_in_failed"), "the sign-ins audited", 10)

    def verify() -> subprocess.CompletedProcess[str]:
        return teleicu("audit", "verify", "--db", str(hub.db))

    ok = verify()
    assert ok.returncode == 0 and "audit log intact" in ok.stdout, ok.stdout + ok.stderr
    with sqlite3.connect(hub.db) as db:  # someone with file access rewrites who failed to sign in
        (seq,) = db.execute("SELECT seq FROM audit_log WHERE action = 'auth.sign_in_failed'").fetchone()
        db.execute("UPDATE audit_log SET actor = 'someone-else' WHERE seq = ?", (seq,))
    broken = verify()
    assert broken.returncode == 1 and f"BROKEN at entry {seq}" in broken.stdout and "changed" in broken.stdout, broken.stdout
    status, body = post_json(f"{hub.base}/api/audit/verify", None, method="GET", as_="admin")
    assert status == 200 and body["intact"] is False and body["break"]["seq"] == seq
    assert post_json(f"{hub.base}/api/audit/verify", None, method="GET", as_="intensivist")[0] == 403  # admins only


def test_no_password_token_or_secret_reaches_the_hub_log(tmp_path) -> None:
    hub = start_hub(tmp_path, extra=("--log-level", "debug"))
    try:
        status, body = sign_in(hub.base, "intensivist")
        assert status == 200
        wrong = "a-wrong-password-for-the-log"
        assert sign_in(hub.base, "intensivist", wrong)[0] == 401
        renewed = raw("POST", f"{hub.base}/api/auth/refresh", {"refresh_token": body["refresh_token"]})[1]
        feed_news2_alarm(hub, "A", "A-01")  # an agent presents its secret
        assert raw("GET", f"{hub.base}/api/beds", headers={"Authorization": f"Bearer {renewed['access_token']}"})[0] == 200
    finally:
        hub.stop()
    log = hub.log.read_text()
    assert "auth" in log or "GET /api/beds" in log, log[-2000:]  # the log did record the requests
    for secret in (PASSWORD, wrong, body["access_token"], body["refresh_token"], renewed["access_token"], renewed["refresh_token"],
                   hub.secrets["edge-A"]):  # fmt: skip
        assert secret not in log
