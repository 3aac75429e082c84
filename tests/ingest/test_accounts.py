"""Users, agent credentials and sessions on a real SQLite file: the rules an admin and the hub rely on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ingest.auth import accounts, sessions
from ingest.auth.accounts import AccountError
from ingest.auth.passwords import verify_password
from ingest.auth.roles import Permission, Role
from ingest.auth.session_book import SessionBook
from wire.random_secrets import secret_hash, secret_matches

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


def test_sessions_are_stored_as_hashes_rotate_once_and_end_with_disable_or_password_change(tmp_path: Path) -> None:
    conn = db(tmp_path)
    accounts.add_user(conn, "rao", "Dr Rao", "intensivist", (), PW, NOW)
    book = SessionBook()
    t, save = book.issue("rao", NOW, "10.0.0.5")
    save(conn)
    book.saved({t.session})
    assert sessions.load(conn, t.session) == book.get(t.session)  # what the hub holds is what the file holds
    old = book.by_refresh(secret_hash(t.refresh))
    assert old is not None and old.live(NOW + 1000) and not old.live(t.access_expires)  # the access token expires
    t2, rotate = book.rotate(old, NOW + 2000, "10.0.0.5")
    assert book.unsaved == {t.session, t2.session}
    rotate(conn)
    stored_old = sessions.load(conn, t.session)
    assert stored_old is not None and stored_old.revoked and stored_old.successor == t2.session  # spent, and names the next
    assert not stored_old.refreshable(NOW + 3000)  # a refresh token works once
    live = sessions.load(conn, t2.session)
    assert live is not None and live.live(NOW + 3000) and sessions.load_by_refresh(conn, secret_hash(t2.refresh)) == live
    # an admin disables the user or changes the password: every session of theirs ends in the file
    t3 = sessions.open_session(conn, "rao", NOW, "x")
    accounts.set_password(conn, "rao", "another long passphrase", NOW + 5)
    assert all(sessions.load(conn, sid).revoked for sid in (t2.session, t3.session))  # type: ignore[union-attr]
    t4 = sessions.open_session(conn, "rao", NOW, "x")
    accounts.set_disabled(conn, "rao", True, NOW)
    assert sessions.load(conn, t4.session).revoked  # type: ignore[union-attr]
    stored = str(conn.execute("SELECT * FROM sessions").fetchall())
    assert all(tok.access not in stored and tok.refresh not in stored for tok in (t, t2, t3, t4))  # hashes only


def test_the_session_book_keeps_unsaved_sessions_and_rereads_saved_ones(tmp_path: Path) -> None:
    conn = db(tmp_path)
    book = SessionBook(max_sessions=3)
    saved_t, save = book.issue("rao", NOW, "x")
    save(conn)
    book.saved({saved_t.session})
    unsaved_t, _never_written = book.issue("rao", NOW, "x")  # the store could not take it
    book.forget_saved()  # an admin changed something: the file is the authority for what it holds
    assert book.get(saved_t.session) is None and book.get(unsaved_t.session) is not None
    reread = sessions.load(conn, saved_t.session)
    assert reread is not None and book.remember(reread) is reread
    for _ in range(3):  # over the bound: saved sessions are dropped first, unsaved ones never
        book.issue("meena", NOW, "x")
    assert book.get(unsaved_t.session) is not None and book.get(saved_t.session) is None
    s = book.get(unsaved_t.session)
    assert s is not None
    book.revoke(s)(conn)
    assert sessions.load(conn, unsaved_t.session).revoked  # type: ignore[union-attr]  # the whole row, once it could be written


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
