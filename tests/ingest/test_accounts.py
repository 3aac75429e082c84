"""Users, agent credentials and sessions on a real SQLite file: the rules an admin and the hub rely on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ingest.auth import accounts, sessions
from ingest.auth.accounts import AccountError
from ingest.auth.passwords import secret_matches, verify_password
from ingest.auth.roles import Permission, Role

NOW = 1_800_000_000_000
PW = "correct horse battery"


def db(tmp: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp / "auth.sqlite3", isolation_level=None)
    conn.executescript(accounts.SCHEMA + sessions.SCHEMA)
    return conn


def test_users_are_checked_and_passwords_stored_hashed(tmp_path: Path) -> None:
    conn = db(tmp_path)
    accounts.add_user(conn, "meena", "Nurse Meena", "ward_nurse", ("A", "B"), PW, NOW)
    u = accounts.get_user(conn, "meena")
    assert u is not None and u.role is Role.WARD_NURSE and u.wards == ("A", "B")
    assert PW not in u.password and verify_password(u.password, PW) and not verify_password(u.password, PW + "x")
    p = u.principal()
    assert p.may(Permission.ACT_ON_ALARMS) and not p.may(Permission.CLINICAL_SETTINGS)
    assert p.sees_ward("A") and not p.sees_ward("C")
    for bad, why in [(("meena", "x", "ward_nurse", ("A",), PW), "already exists"),
                     (("Bad Name", "x", "viewer", (), PW), "user name"),
                     (("asha", "x", "ward_nurse", (), PW), "one or more wards"),
                     (("rao", "x", "intensivist", ("A",), PW), "sees every ward"),
                     (("rao", "x", "surgeon", (), PW), "unknown role"),
                     (("rao", "x", "intensivist", (), "short"), "12 to 256")]:  # fmt: skip
        with pytest.raises(ValueError, match=why):
            accounts.add_user(conn, *bad, NOW)


def test_failed_sign_ins_lock_the_account_and_a_new_password_unlocks_it(tmp_path: Path) -> None:
    conn = db(tmp_path)
    accounts.add_user(conn, "rao", "Dr Rao", "intensivist", (), PW, NOW)
    assert [accounts.record_failure(conn, "rao", NOW, 3, 60_000) for _ in range(3)] == [None, None, NOW + 60_000]
    assert accounts.get_user(conn, "rao").locked_until == NOW + 60_000  # type: ignore[union-attr]
    v = accounts.auth_version(conn)
    accounts.set_password(conn, "rao", "another long passphrase", NOW + 1)
    u = accounts.get_user(conn, "rao")
    assert u is not None and u.locked_until == 0 and accounts.auth_version(conn) == v + 1


def test_sessions_refresh_once_and_end_on_sign_out_disable_or_password_change(tmp_path: Path) -> None:
    conn = db(tmp_path)
    accounts.add_user(conn, "rao", "Dr Rao", "intensivist", (), PW, NOW)
    t = sessions.open_session(conn, "rao", NOW, "10.0.0.5")
    assert sessions.session_user(conn, t.session, NOW + 1000) == ("rao", t.access_expires)
    assert sessions.session_user(conn, t.session, t.access_expires) is None  # expired
    renewed = sessions.refresh_session(conn, t.refresh, NOW + 2000, "10.0.0.5")
    assert renewed is not None and renewed[0] == "rao"
    assert sessions.refresh_session(conn, t.refresh, NOW + 3000, "10.0.0.5") is None  # a refresh token works once
    assert sessions.session_user(conn, t.session, NOW + 3000) is None  # the old session ended
    t2 = renewed[1]
    assert sessions.revoke(conn, t2.session) and sessions.session_user(conn, t2.session, NOW + 4000) is None
    t3 = sessions.open_session(conn, "rao", NOW, "x")
    accounts.set_disabled(conn, "rao", True, NOW)
    assert sessions.session_user(conn, t3.session, NOW + 1) is None
    stored = str(conn.execute("SELECT * FROM sessions").fetchall())
    assert all(tok.access not in stored and tok.refresh not in stored for tok in (t, t2, t3))  # hashes only


def test_agent_secrets_are_shown_once_stored_hashed_and_revocable(tmp_path: Path) -> None:
    conn = db(tmp_path)
    secret = accounts.add_agent(conn, "edge-A", "A", ("A-02", "A-01"), NOW)
    cred = accounts.get_agent(conn, "edge-A")
    assert cred is not None and cred.beds == ("A-01", "A-02") and secret_matches(cred.secret_hash, secret)
    assert secret not in str(conn.execute("SELECT * FROM agent_credentials").fetchall())
    with pytest.raises(AccountError, match="revoke it first"):
        accounts.add_agent(conn, "edge-A", "A", ("A-01",), NOW)
    accounts.revoke_agent(conn, "edge-A", NOW + 5)
    assert accounts.get_agent(conn, "edge-A").revoked_at == NOW + 5  # type: ignore[union-attr]
    new = accounts.add_agent(conn, "edge-A", "A", ("A-01",), NOW + 6)  # a new secret after revocation
    assert new != secret and accounts.get_agent(conn, "edge-A").revoked_at is None  # type: ignore[union-attr]
    with pytest.raises(AccountError, match="beds it serves"):
        accounts.add_agent(conn, "edge-B", "B", (), NOW)
