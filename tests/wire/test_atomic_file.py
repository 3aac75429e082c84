"""wire.atomic_file: a watcher sees the old file or the new one, never half of one, and a secret is never world-readable."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from wire.atomic_file import write_atomically


def test_write_atomically_replaces_the_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "edge.yaml"
    write_atomically(target, "one\n")
    write_atomically(target, "two\n")
    assert target.read_text() == "two\n"
    assert os.listdir(target.parent) == ["edge.yaml"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_a_secret_is_written_readable_by_its_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "agent.secret"
    write_atomically(target, "s3cret\n", 0o600)
    assert target.stat().st_mode & 0o777 == 0o600 and target.read_text() == "s3cret\n"


def test_a_reader_polling_for_the_file_never_sees_part_of_it(tmp_path: Path) -> None:
    target = tmp_path / "demo-credentials.txt"
    whole = "".join(f"user{i:03d} password{i:03d} role\n" for i in range(2000))
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if target.exists():
                seen.append(target.read_text())

    t = threading.Thread(target=watch)
    t.start()
    try:
        for _ in range(20):
            write_atomically(target, whole)
    finally:
        done.set()
        t.join()
    assert seen and all(text == whole for text in seen), {len(text) for text in seen}
