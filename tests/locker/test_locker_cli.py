"""``teleicu locker migrate`` and ``teleicu locker serve`` as an operator runs them: the schema at head (its own version
table), the server answering on its port with the page, and a share-link secret too short refused with exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support import free_port, teleicu, wait_until

from records_bridge.services.db import make_engine
from records_bridge.services.locker.store import current_revision_of

pytestmark = pytest.mark.integration


def test_migrate_then_serve(locker_db: str, tmp_path: Path) -> None:
    done = teleicu("locker", "migrate", "--db", locker_db)
    assert done.returncode == 0 and "newest schema" in done.stderr, done.stderr
    engine = make_engine(locker_db, pool_size=1)
    assert current_revision_of(engine) == "0001"
    engine.dispose()
    secret = tmp_path / "share.secret"
    secret.write_text("short\n")
    refused = teleicu("locker", "serve", "--db", locker_db, "--hub", "http://127.0.0.1:9", "--sms-log", str(tmp_path / "sms.jsonl"),
                      "--share-secret-file", str(secret))  # fmt: skip
    assert refused.returncode == 2 and "at least 32 bytes" in refused.stderr
    secret.write_text("a" * 64 + "\n")
    port = free_port()
    log = (tmp_path / "locker.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "teleicu", "locker", "serve", "--db", locker_db, "--port", str(port), "--hub",
                             "http://127.0.0.1:9", "--sms-log", str(tmp_path / "sms.jsonl"), "--share-secret-file", str(secret),
                             "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: proc.poll() is not None or httpx.get(f"{base}/healthz", timeout=1).status_code == 200, "the locker to answer")
        assert proc.poll() is None, (tmp_path / "locker.log").read_text()
        assert "My health locker" in httpx.get(base + "/", timeout=5).text
        hub_away = httpx.post(f"{base}/api/consents", json={}, headers={"Authorization": "Bearer x"}, timeout=10)
        assert hub_away.status_code == 503 and "hub" in hub_away.json()["detail"]  # no guessing who a clinician is
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
