"""``teleicu queue migrate`` and ``credentials add`` as a clerk's administrator runs them."""

from __future__ import annotations

from pathlib import Path

from support import teleicu

from records_bridge.services.db import make_engine
from records_bridge.services.queue.store import Store


def test_migrate_and_make_a_kiosk_credential(tmp_path: Path) -> None:
    db = str(tmp_path / "queue.sqlite3")
    done = teleicu("queue", "migrate", "--db", db)
    assert done.returncode == 0 and "newest schema" in done.stderr, done.stderr
    refused = teleicu("queue", "credentials", "add", "gate", "--kind", "kiosk", "--facility", "phc", "--db", db)
    assert refused.returncode == 1 and "no facility 'phc'" in refused.stderr
    engine = make_engine(db)
    store = Store(engine, lambda: 0)
    store.put_facility("phc", "PHC")
    made = teleicu("queue", "credentials", "add", "gate", "--kind", "kiosk", "--facility", "phc", "--db", db,
                   "--secret-file", str(tmp_path / "k.secret"))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "k.secret").stat().st_mode & 0o777 == 0o600
    assert store.credential((tmp_path / "k.secret").read_text().strip(), "kiosk") == "phc"
    shown = teleicu("queue", "credentials", "add", "hall", "--kind", "board", "--facility", "phc", "--db", db)
    assert shown.returncode == 0 and shown.stdout.startswith("qb_") and "/board/phc?key=" in shown.stderr
    engine.dispose()
