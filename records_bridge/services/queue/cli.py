"""``teleicu queue``: serve the OPD token queue, migrate its database, make kiosk credentials and board keys.

    teleicu queue serve   --db URL --hub URL [--host 127.0.0.1] [--port 8092] [--sms-log PATH] [--log-level info]
    teleicu queue migrate --db URL
    teleicu queue credentials add NAME --kind kiosk|board --facility ID --db URL [--secret-file F]

``--db`` is a SQLAlchemy URL or a bare path (a SQLite file). Staff sign in to
the hub at ``--hub``; SMS reminders go to the log gateway at ``--sms-log``
(one JSON line per message; nothing is sent). The facility must exist (the
admin API makes it) before a credential can be made for it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from records_bridge.services.cli_args import with_db as db_option

DEFAULT_DB = "sqlite+pysqlite:///var/queue.sqlite3"
DEFAULT_SMS_LOG = Path("var/queue-sms.jsonl")


def add_queue_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="queue_command", required=True)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        return db_option(p, DEFAULT_DB)

    serve = with_db(sub.add_parser("serve", help="serve the queue API and display boards (the schema is migrated first)"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8092)
    serve.add_argument("--hub", required=True, help="the hub's base URL: staff sign in there (/api/auth/me)")
    serve.add_argument("--sms-log", type=Path, default=DEFAULT_SMS_LOG, help=f"the SMS log gateway's file (default {DEFAULT_SMS_LOG})")
    serve.add_argument("--log-level", default="info")
    with_db(sub.add_parser("migrate", help="bring the database's schema to the newest revision"))
    creds = sub.add_parser("credentials", help="kiosk credentials and display-board keys")
    csub = creds.add_subparsers(dest="credentials_command", required=True)
    add = with_db(csub.add_parser("add", help="make one; its secret is printed once (or written to --secret-file)"))
    add.add_argument("name")
    add.add_argument("--kind", choices=("kiosk", "board"), required=True)
    add.add_argument("--facility", required=True)
    add.add_argument("--secret-file", type=Path, default=None, help="write the secret here (mode 0600) instead of printing it")


def run_queue(args: argparse.Namespace) -> int:
    from records_bridge.services.db import make_engine
    from records_bridge.services.queue import store
    from records_bridge.services.queue.app import wall_ms
    from records_bridge.services.problems import Problem

    if args.queue_command == "serve":
        return _serve(args)
    engine = make_engine(args.db, pool_size=1)
    try:
        store.migrate(engine)
        if args.queue_command == "migrate":
            print(f"teleicu queue: {engine.url.render_as_string(hide_password=True)} is at the newest schema", file=sys.stderr)
            return 0
        if args.secret_file is not None and args.secret_file.exists():
            print(f"teleicu queue: {args.secret_file} exists; not overwriting a secret", file=sys.stderr)
            return 1
        try:
            secret = store.Store(engine, wall_ms).add_credential(args.kind, args.facility, args.name)
        except Problem as exc:
            print(f"teleicu queue: {exc.detail}", file=sys.stderr)
            return 1
    finally:
        engine.dispose()
    if args.secret_file is None:
        print(secret)
    else:
        fd = os.open(args.secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        print(f"teleicu queue: {args.kind} credential {args.name!r}; its secret is in {args.secret_file}", file=sys.stderr)
    if args.kind == "board":
        print(f"teleicu queue: the board is at /board/{args.facility}?key=<the secret>", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from records_bridge.services.queue.app import create_app
    from records_bridge.services.sms import LogGateway

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s queue %(levelname)s %(name)s: %(message)s")
    app = create_app(args.db, hub_url=args.hub, sms=LogGateway(args.sms_log))
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(), timeout_graceful_shutdown=2,
                access_log=False)  # board keys travel in the board's URL
    return 0
