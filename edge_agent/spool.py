"""The edge agent's durable store-and-forward spool: every outgoing frame, on disk, until the hub has it.

SQLite in WAL mode. Frames are appended in one transaction per flush with
``synchronous=FULL`` (on disk, power loss included, before they are sent) and
deleted only after the hub acknowledges them; deletions are not fsynced (a
deletion lost to a crash only re-sends a frame the hub drops as a duplicate).
The agent's epoch and next sequence number live here too, so a restarted agent
continues its sequence and the hub's deduplication still holds.

Sequence numbers are taken here: ``append`` takes frames that continue the
sequence exactly (the first at ``next_seq``, no gap) and advances ``next_seq``
only once they are on disk. So the invariant behind the floor is structural:
every sequence number below ``next_seq`` belongs to a frame that is in the
spool, or was acknowledged by the hub, or was dropped by the size policy. The
edge session (``wire.edge_session``) is built from ``epoch``, ``next_seq`` and
``runs()`` and keeps the same account as frames are appended, dropped
(``append`` returns them) and deleted; its floor (the lowest spooled frame
minus one, or ``next_seq - 1`` when the spool is empty) therefore never covers
a frame that is still waiting to be written or to be acknowledged.

Size limit (``max_bytes``), with an explicit policy when it is reached:
waveform frames go first, oldest first; numerics only when no waveform is
left, again oldest first. Every drop is counted by kind; the agent reports
the counts to the hub, which raises a technical alarm.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wire.clock import wall_ms

KIND_OBS, KIND_WAVE = 0, 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS frames (seq INTEGER PRIMARY KEY, kind INTEGER NOT NULL, t INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class SpoolError(RuntimeError):
    pass


@dataclass
class SpoolStats:
    frames: int = 0
    bytes: int = 0
    dropped_wave_frames: int = 0
    dropped_obs_frames: int = 0

    @property
    def dropped_frames(self) -> int:
        return self.dropped_wave_frames + self.dropped_obs_frames


class Spool:
    def __init__(self, path: Path, *, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.path = path
        self.max_bytes = max_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot open the spool {path}: {exc}") from None
        self.stats = SpoolStats()
        self._recount()
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        last = self._db.execute("SELECT coalesce(max(seq), 0) FROM frames").fetchone()[0]
        self.epoch: int = meta.get("epoch") or wall_ms()
        self.next_seq: int = max(meta.get("next_seq", 1), last + 1)
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('epoch', ?)", (self.epoch,))

    def append(self, frames: list[tuple[int, int, bytes]]) -> list[int]:
        """Write ``(seq, kind, data)`` frames durably, in one transaction, then apply the size limit.

        The frames must continue the sequence: ``next_seq``, ``next_seq + 1``, ... (``SpoolError`` otherwise);
        ``next_seq`` moves past them only when the transaction has committed. Returns the frames the size
        limit dropped (these or older ones)."""
        if not frames:
            return []
        expected = list(range(self.next_seq, self.next_seq + len(frames)))
        if [s for s, _k, _d in frames] != expected:
            raise SpoolError(f"spool {self.path}: frames must continue the sequence at {self.next_seq} without gaps")
        now = wall_ms()
        db = self._db
        try:
            db.execute("PRAGMA synchronous=FULL")
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO frames VALUES (?,?,?,?)", [(s, k, now, d) for s, k, d in frames])
            self.stats.frames += len(frames)
            self.stats.bytes += sum(len(d) for _s, _k, d in frames)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('next_seq', ?)", (expected[-1] + 1,))
            dropped = self._enforce_limit()
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise SpoolError(f"spool {self.path}: write failed: {exc}") from None
        self.next_seq = expected[-1] + 1
        return dropped

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        self._recount()

    def _recount(self) -> None:
        """Counters from what is on disk (after a rolled-back transaction that had already counted)."""
        row = self._db.execute("SELECT count(*), coalesce(sum(length(data)), 0) FROM frames").fetchone()
        self.stats.frames, self.stats.bytes = int(row[0]), int(row[1])
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        self.stats.dropped_wave_frames = meta.get("dropped_wave", 0)
        self.stats.dropped_obs_frames = meta.get("dropped_obs", 0)

    def _enforce_limit(self) -> list[int]:
        """Inside the append transaction: drop waveforms, then numerics, oldest first, until under the limit."""
        dropped: list[int] = []
        for kind in (KIND_WAVE, KIND_OBS):
            if self.stats.bytes <= self.max_bytes:
                break
            doomed: list[int] = []
            freed = 0
            for seq, n in self._db.execute("SELECT seq, length(data) FROM frames WHERE kind=? ORDER BY seq", (kind,)):
                if self.stats.bytes - freed <= self.max_bytes:
                    break
                doomed.append(seq)
                freed += n
            if not doomed:
                continue
            self._db.executemany("DELETE FROM frames WHERE seq=?", [(q,) for q in doomed])
            dropped.extend(doomed)
            self.stats.frames -= len(doomed)
            self.stats.bytes -= freed
            if kind == KIND_WAVE:
                self.stats.dropped_wave_frames += len(doomed)
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('dropped_wave', ?)", (self.stats.dropped_wave_frames,))
            else:
                self.stats.dropped_obs_frames += len(doomed)
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('dropped_obs', ?)", (self.stats.dropped_obs_frames,))
        return dropped

    def delete(self, runs: Iterable[tuple[int, int]]) -> int:
        """The hub holds the frames in these inclusive runs ``(first, last)``: forget them. Returns how many went."""
        db = self._db
        n = size = 0
        try:
            db.execute("PRAGMA synchronous=OFF")
            db.execute("BEGIN")
            for lo, hi in runs:
                k, b = db.execute("SELECT count(*), coalesce(sum(length(data)), 0) FROM frames WHERE seq BETWEEN ? AND ?",
                                  (lo, hi)).fetchone()  # fmt: skip
                if k:
                    db.execute("DELETE FROM frames WHERE seq BETWEEN ? AND ?", (lo, hi))
                    n, size = n + k, size + b
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise SpoolError(f"spool {self.path}: delete failed: {exc}") from None
        self.stats.frames -= n
        self.stats.bytes -= size
        return n

    def acknowledge(self, upto: int, also: tuple[int, ...] = ()) -> int:
        """The hub holds every frame up to ``upto`` and those in ``also`` (an ``Ack`` as sent): forget them."""
        return self.delete([(0, upto), *((s, s) for s in also)])

    def read(self, after: int, before: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` frames with ``after < seq < before``, in order."""
        return self._db.execute(
            "SELECT seq, data FROM frames WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?", (after, before, limit)
        ).fetchall()

    def get(self, seq: int) -> bytes | None:
        row = self._db.execute("SELECT data FROM frames WHERE seq = ?", (seq,)).fetchone()
        return row[0] if row else None

    def runs(self) -> list[tuple[int, int]]:
        """The sequence numbers held, as inclusive runs ``(first, last)`` in order."""
        return self._db.execute(
            "SELECT min(seq), max(seq) FROM (SELECT seq, seq - row_number() OVER (ORDER BY seq) AS run FROM frames) "
            "GROUP BY run ORDER BY 1"
        ).fetchall()

    def oldest_t(self) -> int:
        return int(self._db.execute("SELECT coalesce(min(t), 0) FROM frames").fetchone()[0])

    def report(self) -> dict[str, int]:
        s = self.stats
        return {
            "frames": s.frames,
            "bytes": s.bytes,
            "dropped_frames": s.dropped_frames,
            "dropped_wave_frames": s.dropped_wave_frames,
            "dropped_obs_frames": s.dropped_obs_frames,
            "oldest_t": self.oldest_t(),
        }

    def close(self) -> None:
        self._db.close()
