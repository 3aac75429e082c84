"""``teleicu users``, ``teleicu agents`` and ``teleicu audit``: administration on the hub's state file.

They work on the same state as the hub (``--data-dir``, ``--db``, ``--store``
and ``--state`` as for ``teleicu hub``: a SQLite file or a PostgreSQL URL),
whether the hub runs or not: writers take turns (``portable_sql.begin_write``),
and a running hub sees a disabled user, a changed
password or a revoked agent within a second (``ingest.auth.service``). Every
change is written to the audit log with actor ``cli`` (and the operating-system
user who ran it). Passwords are read without echo (twice), or from standard
input with ``--password-stdin``; an agent's secret is printed once and never
stored in clear.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ingest.auth import accounts, audit_log
from ingest.auth.accounts import AccountError
from ingest.auth.audit_log import AuditEntry
from ingest.auth.passwords import PasswordPolicyError
from ingest.auth.roles import Role
from ingest.stores import StoreUrlError, is_postgres_url, state_location, state_schema
from ingest.stores.base import StoreError
from ingest.stores.portable_sql import begin_write
from ingest.stores.sqlite_db import connect, prepare
from wire.atomic_file import write_atomically
from wire.clock import wall_ms

T = TypeVar("T")


def add_store_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--data-dir", type=Path, default=Path("var"), help="the hub's data directory (default ./var)")
    ap.add_argument("--db", type=Path, default=None, help="the hub's embedded store file (default <data-dir>/teleicu.sqlite3)")
    ap.add_argument("--store", default=None, help="the hub's store URL, as given to teleicu hub (InfluxDB: its state file)")
    ap.add_argument("--state", default=None, help="the hub's state URL, as given to teleicu hub (postgresql://...)")


def add_admin_arguments(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser("users", help="manage the people who sign in: add, list, disable, enable, passwd")
    uc = users.add_subparsers(dest="action", required=True)
    add = uc.add_parser("add", help="add a user")
    add.add_argument("username")
    add.add_argument("--name", required=True, help="display name, as colleagues know them (e.g. 'Nurse Meena')")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--wards", default="", help="comma-separated wards (a ward_nurse only)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    uc.add_parser("list", help="list users")
    for name, what in (("disable", "disable a user (ends their sessions)"), ("enable", "enable a disabled user")):
        p = uc.add_parser(name, help=what)
        p.add_argument("username")
    pw = uc.add_parser("passwd", help="set a user's password (ends their sessions, unlocks the account)")
    pw.add_argument("username")
    pw.add_argument("--password-stdin", action="store_true")
    agents = sub.add_parser("agents", help="manage edge agents' secrets: add, list, revoke")
    ac = agents.add_subparsers(dest="action", required=True)
    a_add = ac.add_parser("add", help="register an agent with its ward and beds; prints its secret once")
    a_add.add_argument("agent")
    a_add.add_argument("--ward", default=None, help="its ward (default: the agent's ward in --beds-from)")
    beds = a_add.add_mutually_exclusive_group(required=True)
    beds.add_argument("--beds", help="comma-separated bed ids the agent may send data for")
    beds.add_argument("--beds-from", type=Path, metavar="EDGE_YAML", help="the beds of the gateway's own edge configuration")
    a_add.add_argument("--secret-file", type=Path, default=None,
                       help="write the secret to this file (mode 0600, for the agent's hub.secret_file) instead of printing it")  # fmt: skip
    ac.add_parser("list", help="list agents and whether their secret is live")
    rv = ac.add_parser("revoke", help="revoke an agent's secret (a running hub cuts it off within a second)")
    rv.add_argument("agent")
    audit = sub.add_parser("audit", help="the audit log: verify its hash chain, or show entries")
    au = audit.add_subparsers(dest="action", required=True)
    au.add_parser("verify", help="check the chain; names the first broken entry (exit status 1)")
    show = au.add_parser("show", help="print entries as JSON lines")
    show.add_argument("--user", default=None)
    show.add_argument("--target", default=None)
    show.add_argument("--limit", type=int, default=100)
    for p in (*uc.choices.values(), *ac.choices.values(), *au.choices.values()):
        add_store_arguments(p)


def open_state(location: Path | str) -> Any:
    """A connection to the hub's state (a SQLite file's path or a PostgreSQL URL), created or brought up to date as
    the hub would."""
    if is_postgres_url(str(location)):
        import psycopg

        from ingest.stores import postgres_db

        try:
            pg = postgres_db.PgConnection(str(location))
        except psycopg.Error as exc:
            raise StoreError(f"cannot reach {postgres_db.redacted(str(location))}: {exc}") from exc
        try:
            postgres_db.prepare(pg, state_schema())
        except BaseException:
            pg.close()
            raise
        return pg
    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    prepare(conn, state_schema(), str(path))
    return conn


def _open(args: argparse.Namespace) -> Any:
    url = args.store or str(args.db or args.data_dir / "teleicu.sqlite3")
    return open_state(state_location(url, args.data_dir, args.state))


def change(conn: Any, action: str, target: str, detail: dict | None, fn: Callable[[Any], T], actor: str = "cli") -> T:
    """Run a change and audit it in one transaction (the chain's head is read inside it)."""
    begin_write(conn)
    try:
        result = fn(conn)
        audit_log.append(conn, [AuditEntry(wall_ms(), actor, action, target, {**(detail or {}), "os_user": getpass.getuser()}, "cli")])
        conn.execute("COMMIT")
        return result
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def write_secret_file(path: Path, secret: str) -> None:
    """The agent's secret, readable by the user who runs it only (written whole: an agent may be waiting for it)."""
    write_atomically(path, secret + "\n", 0o600)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("New password (12 characters or more): ")
    if getpass.getpass("Again: ") != first:
        raise AccountError("the two passwords differ")
    return first


def _users(args: argparse.Namespace, conn: Any) -> int:
    now = wall_ms()
    if args.action == "list":
        for u in accounts.list_users(conn):
            print(json.dumps(u))
        return 0
    if args.action == "add":
        wards = tuple(w.strip() for w in args.wards.split(",") if w.strip())
        password = _password(args.password_stdin)
        change(conn, "user.add", f"user:{args.username}", {"role": args.role, "wards": list(wards)},
               lambda c: accounts.add_user(c, args.username, args.name, args.role, wards, password, now))  # fmt: skip
        print(f"user {args.username} added ({args.role}{': wards ' + ', '.join(wards) if wards else ''})")
    elif args.action in ("disable", "enable"):
        change(conn, f"user.{args.action}", f"user:{args.username}", None,
               lambda c: accounts.set_disabled(c, args.username, args.action == "disable", now))  # fmt: skip
        print(f"user {args.username} {args.action}d")
    else:
        password = _password(args.password_stdin)
        change(conn, "user.password", f"user:{args.username}", None, lambda c: accounts.set_password(c, args.username, password, now))
        print(f"password of {args.username} changed; their sessions have ended")
    return 0


def _agents(args: argparse.Namespace, conn: Any) -> int:
    now = wall_ms()
    if args.action == "list":
        for a in accounts.list_agents(conn):
            print(json.dumps(a))
        return 0
    if args.action == "add":
        ward, beds = _agent_beds(args)
        secret = change(conn, "agent.add", f"agent:{args.agent}", {"ward": ward, "beds": list(beds)},
                        lambda c: accounts.add_agent(c, args.agent, ward, beds, now))  # fmt: skip
        print(f"agent {args.agent} registered for ward {ward}, beds {', '.join(beds)}.")
        if args.secret_file is not None:
            write_secret_file(args.secret_file, secret)
            print(f"Its secret is in {args.secret_file} (readable by this user only): the agent's hub.secret_file.")
        else:
            print("Its secret (shown only now): save it in a file readable by the agent only, named in its hub.secret_file:")
            print(secret)
        return 0
    change(conn, "agent.revoke", f"agent:{args.agent}", None, lambda c: accounts.revoke_agent(c, args.agent, now))
    print(f"agent {args.agent} revoked; a running hub cuts its connection within a second")
    return 0


def _agent_beds(args: argparse.Namespace) -> tuple[str, tuple[str, ...]]:
    """The ward and beds to register: given, or those of the gateway's edge YAML (its ward unless --ward says)."""
    if args.beds is not None:
        if args.ward is None:
            raise AccountError("give --ward (or --beds-from the gateway's YAML)")
        return args.ward, tuple(b.strip() for b in args.beds.split(",") if b.strip())
    from edge_agent.config import EdgeConfigError, parse_edge_config

    try:
        raw = yaml.safe_load(args.beds_from.read_text())
        if isinstance(raw, dict) and isinstance(raw.get("hub"), dict):
            raw["hub"].setdefault("secret_file", "-")  # the secret is what we are about to issue
        cfg = parse_edge_config(raw, str(args.beds_from))
    except (OSError, yaml.YAMLError, EdgeConfigError) as exc:
        raise AccountError(f"--beds-from {args.beds_from}: {exc}") from None
    if cfg.agent_id != args.agent:
        raise AccountError(f"--beds-from {args.beds_from} is agent {cfg.agent_id!r}'s configuration, not {args.agent!r}'s")
    return args.ward or cfg.ward, tuple(sorted({b for d in cfg.devices for b in d.served_beds}))


def _audit(args: argparse.Namespace, conn: Any) -> int:
    if args.action == "verify":
        ok, brk = audit_log.verify(audit_log.rows(conn))
        if brk is None:
            print(f"audit log intact: {ok} entries verified")
            return 0
        print(f"audit log BROKEN at entry {brk.seq}: {brk.reason} ({ok} entries before it verified)")
        return 1
    sql = "SELECT seq, at, actor, action, target, detail, source FROM audit_log"
    where, params = [], []
    for column, value in (("actor", args.user), ("target", args.target)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq DESC LIMIT ?"
    for seq, at, actor, action, target, detail, source in reversed(conn.execute(sql, (*params, args.limit)).fetchall()):
        print(json.dumps({"seq": seq, "at": at, "actor": actor, "action": action, "target": target, "detail": json.loads(detail), "source": source}))
    return 0


def admin_main(args: argparse.Namespace) -> int:
    try:
        conn = _open(args)
    except (StoreUrlError, StoreError, OSError, sqlite3.Error) as exc:
        print(f"teleicu {args.command}: cannot open the hub's state: {exc}", file=sys.stderr)
        return 2
    try:
        return {"users": _users, "agents": _agents, "audit": _audit}[args.command](args, conn)
    except (AccountError, PasswordPolicyError) as exc:
        print(f"teleicu {args.command} {args.action}: {exc}", file=sys.stderr)
        return 2
    finally:
        conn.close()

