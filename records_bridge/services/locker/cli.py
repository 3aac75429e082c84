"""``teleicu locker``: serve the Digi Health Locker, or migrate its database.

    teleicu locker serve   --db URL --hub URL --sms-log PATH --share-secret-file F [--host 127.0.0.1] [--port 8091]
                           [--public-url URL] [--log-level info]
    teleicu locker migrate --db URL

``--db`` is a SQLAlchemy URL or a bare path (a SQLite file). ``--sms-log``:
the log gateway's file (one JSON line per message; nothing is sent). The
share-link secret file holds at least 32 bytes (``openssl rand -hex 32``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from records_bridge.services.cli_args import with_db as db_option

DEFAULT_DB = "sqlite+pysqlite:///var/locker.sqlite3"


def add_locker_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="locker_command", required=True)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        return db_option(p, DEFAULT_DB)

    serve = with_db(sub.add_parser("serve", help="serve the patient's page and the locker's API (the schema is migrated first)"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8091)
    serve.add_argument("--hub", required=True, help="the hub's URL: staff sign in there (its /api/auth/me says who they are)")
    serve.add_argument("--sms-log", type=Path, required=True, help="write texts (sign-in codes) here as JSON lines; nothing is sent")
    serve.add_argument("--share-secret-file", type=Path, required=True, help="the HMAC secret of share links (32 bytes or more)")
    serve.add_argument("--public-url", default=None, help="the locker's address as patients' doctors reach it (in share links)")
    serve.add_argument("--log-level", default="info")
    with_db(sub.add_parser("migrate", help="bring the database's schema to the newest revision"))


def run_locker(args: argparse.Namespace) -> int:
    if args.locker_command == "serve":
        return _serve(args)
    from records_bridge.services.db import make_engine
    from records_bridge.services.locker.store import migrate

    engine = make_engine(args.db, pool_size=1)
    try:
        migrate(engine)
        print(f"teleicu locker: {engine.url.render_as_string(hide_password=True)} is at the newest schema", file=sys.stderr)
        return 0
    finally:
        engine.dispose()


def _serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from records_bridge.services.locker.app import create_app, read_secret
    from records_bridge.services.sms import LogGateway

    try:
        secret = read_secret(args.share_secret_file)
    except (OSError, ValueError) as exc:
        print(f"teleicu locker serve: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s locker %(levelname)s %(name)s: %(message)s")
    app = create_app(args.db, hub_url=args.hub, sms=LogGateway(args.sms_log), share_secret=secret, public_url=args.public_url)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(), access_log=False)  # share links are secrets in paths
    return 0
