"""``teleicu ehr``: serve the EHR, migrate its database, add API clients, count what it holds.

    teleicu ehr serve   --db URL [--host 127.0.0.1] [--port 8090] [--tls-cert PEM --tls-key PEM] [--log-level info]
    teleicu ehr migrate --db URL
    teleicu ehr clients add NAME --role writer|reader --db URL [--secret-file F]
    teleicu ehr count   --db URL

``--db`` is a SQLAlchemy URL (``sqlite+pysqlite:///path``,
``postgresql+psycopg://user@host/db``) or a bare path, taken as a SQLite file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from records_bridge.services.cli_args import with_db as db_option

if TYPE_CHECKING:
    from sqlalchemy import Engine

DEFAULT_DB = "sqlite+pysqlite:///var/ehr.sqlite3"


def add_ehr_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="ehr_command", required=True)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        return db_option(p, DEFAULT_DB)

    serve = with_db(sub.add_parser("serve", help="serve FHIR under /fhir (the schema is migrated first)"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8090)
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--tls-cert", type=Path, default=None, help="PEM certificate (chain): serve HTTPS; needs --tls-key")
    serve.add_argument("--tls-key", type=Path, default=None, help="PEM private key of --tls-cert")
    with_db(sub.add_parser("migrate", help="bring the database's schema to the newest revision"))
    clients = sub.add_parser("clients", help="the API clients and their bearer secrets")
    csub = clients.add_subparsers(dest="clients_command", required=True)
    add = with_db(csub.add_parser("add", help="register a client; its secret is printed once (or written to --secret-file)"))
    add.add_argument("name")
    add.add_argument("--role", choices=("writer", "reader"), required=True)
    add.add_argument("--secret-file", type=Path, default=None, help="write the secret here (mode 0600) instead of printing it")
    with_db(sub.add_parser("count", help="print the number of resources of each type, as JSON"))


def run_ehr(args: argparse.Namespace) -> int:
    from records_bridge.services.db import make_engine
    from records_bridge.services.ehr import store

    if args.ehr_command == "serve":
        return _serve(args)
    if args.ehr_command == "count":
        print(json.dumps(store.count_by_type(args.db), sort_keys=True))
        return 0
    engine = make_engine(args.db, pool_size=1)
    try:
        store.migrate(engine)
        if args.ehr_command == "migrate":
            print(f"teleicu ehr: {engine.url.render_as_string(hide_password=True)} is at the newest schema", file=sys.stderr)
            return 0
        return _add_client(engine, args)
    finally:
        engine.dispose()


def _add_client(engine: Engine, args: argparse.Namespace) -> int:
    from records_bridge.services.ehr.clients import ClientExists, add_client

    if args.secret_file is not None and args.secret_file.exists():
        print(f"teleicu ehr: {args.secret_file} exists; not overwriting a secret", file=sys.stderr)
        return 1
    try:
        secret = add_client(engine, args.name, args.role)
    except (ClientExists, ValueError) as exc:
        print(f"teleicu ehr: {exc}", file=sys.stderr)
        return 1
    if args.secret_file is None:
        print(secret)
    else:
        fd = os.open(args.secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        print(f"teleicu ehr: client {args.name!r} ({args.role}); its secret is in {args.secret_file}", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from records_bridge.services.ehr.app import create_app

    if (args.tls_cert is None) != (args.tls_key is None):
        print("teleicu ehr serve: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    tls = {}
    if args.tls_cert is not None:
        for given in (args.tls_cert, args.tls_key):
            if not given.is_file():
                print(f"teleicu ehr serve: cannot read {given}", file=sys.stderr)
                return 2
        tls = {"ssl_certfile": str(args.tls_cert), "ssl_keyfile": str(args.tls_key)}
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s ehr %(levelname)s %(name)s: %(message)s")
    app = create_app(args.db)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(), **tls)
    return 0
