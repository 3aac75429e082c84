"""ingest.audit_writer.AuditWriter.caught_up on a real SQLite state store: it returns at once with nothing queued,
waits (its caller bounds it) while nothing writes, and returns once what was queued is in the store."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from ingest.audit_writer import AuditWriter
from ingest.auth.audit_log import AuditEntry
from ingest.stores import sqlite_stores


def entry(n: int) -> AuditEntry:
    return AuditEntry(1_000 + n, "dr", "alarm.acknowledge", f"bed:B-{n}", {"n": n}, "test")


def test_caught_up_returns_once_everything_queued_is_written_by_the_writer_or_its_flush(tmp_path: Path) -> None:
    async def scene() -> tuple[int, int]:
        stores = sqlite_stores(tmp_path / "hub.sqlite3")
        await stores.start()
        try:
            writer = AuditWriter(stores.state, stores.samples, Counter())
            await asyncio.wait_for(writer.caught_up(), 1.0)  # nothing queued: at once
            for n in range(5):
                writer.persist(entry(n))
            with pytest.raises(TimeoutError):  # nobody writes yet
                await asyncio.wait_for(writer.caught_up(), 0.3)
            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(writer.run())
                await asyncio.wait_for(writer.caught_up(), 10.0)
                by_writer = len(await stores.state.audit_entries(None, None, 0, 10_000, 100))
                task.cancel()
            writer.persist(entry(5))  # the writer is stopped: its flush writes it, as on the hub's stop
            await writer.flush()
            await asyncio.wait_for(writer.caught_up(), 1.0)
            return by_writer, len(await stores.state.audit_entries(None, None, 0, 10_000, 100))
        finally:
            await stores.stop()

    assert asyncio.run(scene()) == (5, 6)
