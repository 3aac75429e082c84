"""The hub's state store: alarms and their audit trail, data gaps, known agents, durable watermarks, beds' settings.

In SQLite it shares its ``SQLiteDatabase`` (file and writer thread) with the
embedded sample store, or stands alone beside InfluxDB
(``teleicu-influx-state.sqlite3`` in the hub's data directory); in PostgreSQL
it is a ``PostgresDatabase`` (``--state postgresql://...``). The SQL is the
same on both (``ingest.stores.portable_sql``). Every write is an insert or
upsert keyed by its row (see ``group_commit``): forgetting an agent writes a
tombstone rather than a delete, so a save and a forget of one agent in the same
commit keep their order.
"""

from __future__ import annotations

import json

from ingest import band_census, outbox
from ingest.auth import accounts, audit_log, sessions
from ingest.auth.audit_log import AuditEntry
from ingest.patients import hourly
from ingest.patients import tables as patient_tables
from ingest.patients.score_changes import LAST_POINTS_SQL, POINT_SQL
from ingest.stores.base import Marks
from ingest.stores.group_commit import GroupCommitDatabase
from ingest.stores.portable_sql import Conn, json_text, upsert
from wire.outbox_events import EventData

#: durable watermarks: kept with the state, and in the embedded sample file too when the state is elsewhere
AGENT_SEQ_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_seq (
    agent TEXT NOT NULL, epoch INTEGER NOT NULL, last_seq INTEGER NOT NULL,
    PRIMARY KEY (agent, epoch)
) WITHOUT ROWID;
"""
SCHEMA = AGENT_SEQ_SCHEMA + """
CREATE TABLE IF NOT EXISTS alerts (id TEXT PRIMARY KEY, state TEXT NOT NULL, body TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_audit (
    alert_id TEXT NOT NULL, at INTEGER NOT NULL, event TEXT NOT NULL, "by" TEXT, note TEXT, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_audit_at ON alert_audit (at);
CREATE INDEX IF NOT EXISTS alert_audit_id ON alert_audit (alert_id, at);
CREATE TABLE IF NOT EXISTS data_gaps (bed TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, PRIMARY KEY (bed, start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agents (
    agent TEXT PRIMARY KEY, ward TEXT NOT NULL, beds TEXT NOT NULL, forgotten INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bed_settings (
    bed TEXT NOT NULL, name TEXT NOT NULL, ward TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (bed, name)
) WITHOUT ROWID;
"""

MARK_SQL = ("INSERT INTO agent_seq (agent, epoch, last_seq) VALUES (?,?,?) ON CONFLICT (agent, epoch) "
            "DO UPDATE SET last_seq = excluded.last_seq WHERE excluded.last_seq > agent_seq.last_seq")  # only ever rises
ALERT_SQL = upsert("alerts", "id, state, body", "id")
AUDIT_SQL = 'INSERT INTO alert_audit (alert_id, at, event, "by", note, body) VALUES (?,?,?,?,?,?)'
GAP_SQL = upsert("data_gaps", 'bed, start, "end"', "bed, start")
AGENT_SQL = upsert("agents", "agent, ward, beds, forgotten", "agent")
BED_SETTING_SQL = upsert("bed_settings", "bed, name, ward, body", "bed, name")
AUTH_SCHEMA = accounts.SCHEMA + sessions.SCHEMA + audit_log.SCHEMA  # users, sessions, agent secrets, the audit chain
#: every table of the state file: the hub's own, identity and audit, patients and the outbox
STATE_SCHEMAS: list[str] = [SCHEMA, AUTH_SCHEMA, patient_tables.SCHEMA + outbox.SCHEMA + hourly.SCHEMA, band_census.SCHEMA]


class SQLStateStore:
    def __init__(self, db: GroupCommitDatabase) -> None:
        self.db = db

    async def start(self) -> None:
        await self.db.start()

    async def stop(self) -> None:
        await self.db.stop()

    # --- writing -----------------------------------------------------------------

    async def save_marks(self, marks: Marks) -> None:
        await self.db.write([(MARK_SQL, [(a, e, m) for (a, e), m in marks.items()])])

    async def save_alert(self, alert: dict, event: str, by: str | None, at: int, note: str | None = None,
                         outbox_event: EventData | None = None) -> None:  # fmt: skip
        body = json.dumps(alert)
        statements = [(ALERT_SQL, [(alert["id"], alert["state"], body)]), (AUDIT_SQL, [(alert["id"], at, event, by, note, body)])]
        if outbox_event is not None:
            statements.append((outbox.INSERT_SQL, [outbox.row(outbox_event, at)]))
        await self.db.write(statements)

    async def save_score_change(self, point: tuple[str, int, int | None, str, int], event: EventData | None) -> None:
        """A patient's NEWS2 changed: the point for the discharge summary, and the band event when there is one."""
        statements = [(POINT_SQL, [point])]
        if event is not None:
            statements.append((outbox.INSERT_SQL, [outbox.row(event, point[1])]))
        await self.db.write(statements)

    async def last_score_points(self) -> list[tuple[str, int | None, str, int]]:
        return await self.db.read(LAST_POINTS_SQL)  # type: ignore[return-value]

    async def save_gap(self, bed: str, start: int, end: int) -> None:
        await self.db.write([(GAP_SQL, [(bed, start, end)])])

    async def save_agent(self, agent: str, ward: str, beds: list[str]) -> None:
        await self.db.write([(AGENT_SQL, [(agent, ward, json.dumps(beds), 0)])])

    async def forget_agent(self, agent: str) -> None:
        await self.db.write([(AGENT_SQL, [(agent, "", "[]", 1)])])

    async def save_bed_setting(self, bed: str, ward: str, name: str, body: dict) -> None:
        await self.db.write([(BED_SETTING_SQL, [(bed, name, ward, json.dumps(body))])])

    async def append_audit(self, entries: list[AuditEntry]) -> None:
        """Append to the hash-chained audit log, in order, in one transaction with the read of its head."""
        await self.db.call(lambda conn: audit_log.append(conn, entries))

    # --- reading -----------------------------------------------------------------

    async def audit_head(self) -> tuple[int, str]:
        """The audit log's newest entry: ``(seq, hash)``."""
        return await self.db.read_with(audit_log.head)

    async def last_seqs(self) -> Marks:
        rows = await self.db.read("SELECT agent, epoch, last_seq FROM agent_seq")
        return {(a, e): s for a, e, s in rows}

    async def open_alerts(self) -> list[dict]:
        rows = await self.db.read("SELECT body FROM alerts WHERE state != 'resolved' ORDER BY id")
        return [json.loads(body) for (body,) in rows]

    async def alert_history(self, alert_id: str) -> list[dict]:
        rows = await self.db.read('SELECT at, event, "by", note, body FROM alert_audit WHERE alert_id=? ORDER BY rowid', (alert_id,))
        return [{"at": at, "event": ev, "by": by, "note": note, "alert": json.loads(body)} for at, ev, by, note, body in rows]

    async def alerts(self, state: str | None, limit: int, bed: str | None = None) -> list[dict]:
        def run(conn: Conn) -> list[tuple]:
            where, args = ["TRUE"], []
            if state:
                where.append("state = ?")
                args.append(state)
            if bed:  # the bed's own alarms, then the limit: not the newest of all, then the bed's among them
                where.append(f"{json_text(conn, 'body', 'bed')} = ?")
                args.append(bed)
            sql = f"SELECT body FROM alerts WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
            return conn.execute(sql, (*args, limit)).fetchall()

        return [json.loads(body) for (body,) in await self.db.read_with(run)]

    async def audit_between(self, since: int, until: int) -> list[tuple[str, int, str, str]]:
        return await self.db.read(  # type: ignore[return-value]
            "SELECT alert_id, at, event, body FROM alert_audit WHERE at>=? AND at<=? ORDER BY at, rowid", (since, until)
        )

    async def gaps(self, since: int, until: int, bed: str | None = None) -> list[dict]:
        sql = 'SELECT bed, start, "end" FROM data_gaps WHERE "end" >= ? AND start <= ?' + (" AND bed = ?" if bed else "") + " ORDER BY start"
        rows = await self.db.read(sql, (since, until, bed) if bed else (since, until))
        return [{"bed": b, "start": st, "end": en} for b, st, en in rows]

    async def bed_settings(self, ward: str | None = None) -> list[tuple[str, str, str, dict]]:
        sql, args = "SELECT bed, ward, name, body FROM bed_settings", ()
        if ward is not None:
            sql, args = sql + " WHERE ward = ?", (ward,)
        rows = await self.db.read(sql + " ORDER BY bed, name", args)
        return [(b, w, n, json.loads(body)) for b, w, n, body in rows]

    async def known_agents(self) -> list[tuple[str, str, list[str]]]:
        rows = await self.db.read("SELECT agent, ward, beds FROM agents WHERE forgotten = 0 ORDER BY agent")
        return [(a, w, json.loads(b)) for a, w, b in rows]

    async def audit_entries(self, actor: str | None, target: str | None, since: int, until: int, limit: int) -> list[dict]:
        """Audit log entries in [since, until], oldest first, optionally of one actor and/or one target."""
        sql = "SELECT seq, at, actor, action, target, detail, source FROM audit_log WHERE at >= ? AND at <= ?"
        args: list[object] = [since, until]
        for column, value in (("actor", actor), ("target", target)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        rows = await self.db.read(sql + " ORDER BY seq LIMIT ?", (*args, limit))
        return [{"seq": q, "at": at, "actor": a, "action": act, "target": t, "detail": json.loads(d), "source": src}
                for q, at, a, act, t, d, src in rows]  # fmt: skip

    async def count(self, table: str) -> int:
        if table not in ("alerts", "alert_audit", "data_gaps", "agents"):
            raise ValueError(table)
        rows = await self.db.read(f"SELECT count(*) FROM {table}")
        return int(rows[0][0])
