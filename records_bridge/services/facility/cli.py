"""``teleicu facility``: serve the facility registry and its map, migrate its database, import a district's CSV file.

    teleicu facility serve      --db URL --hub URL [--host 127.0.0.1] [--port 8093] [--stale-after-s 300]
                                [--tile-url URL] [--tile-attribution TEXT] [--outlines FILE] [--log-level info]
    teleicu facility migrate    --db URL
    teleicu facility import-csv FILE --db URL [--by NAME]

``--db`` is a SQLAlchemy URL or a bare path (a SQLite file). Staff sign in to the hub at ``--hub``. The map draws
the vendored state outlines and no tiles; ``--tile-url`` (``https://host/{z}/{x}/{y}.png``) adds a tile server for a
site with internet access, ``--outlines`` another outline GeoJSON (the state's official one). ``import-csv`` checks
every row and stores all or none; the rows' changes are recorded as made by ``--by`` (default: the operator's login).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from records_bridge.services.cli_args import with_db as db_option

DEFAULT_DB = "sqlite+pysqlite:///var/facility.sqlite3"


def add_facility_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="facility_command", required=True)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        return db_option(p, DEFAULT_DB)

    serve = with_db(sub.add_parser("serve", help="serve the registry's API and map page (the schema is migrated first)"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8093)
    serve.add_argument("--hub", required=True, help="the hub's base URL: staff sign in there (/api/auth/me)")
    serve.add_argument("--stale-after-s", type=float, default=300.0,
                       help="an ICU occupancy older than this (by its census time) is stale: its free beds are not shown (default 300)")  # fmt: skip
    serve.add_argument("--tile-url", default=None, help="a map tile URL template for sites with internet; default none (outlines only)")
    serve.add_argument("--tile-attribution", default="", help="the tile server's attribution text, shown on the map")
    serve.add_argument("--outlines", type=Path, default=None, help="the state outline GeoJSON (default: the vendored Natural Earth states)")
    serve.add_argument("--log-level", default="info")
    with_db(sub.add_parser("migrate", help="bring the database's schema to the newest revision"))
    imp = with_db(sub.add_parser("import-csv", help="import a registry CSV file: every row checked, all stored or none"))
    imp.add_argument("file", type=Path)
    imp.add_argument("--by", default=None, help="who the changes are recorded as made by (default: your login name)")


def run_facility(args: argparse.Namespace) -> int:
    from records_bridge.services.db import make_engine
    from records_bridge.services.facility import csv_import, store
    from records_bridge.services.facility.kpi import store as kpi_store
    from records_bridge.services.facility.app import wall_ms

    if args.facility_command == "serve":
        return _serve(args)
    if args.facility_command == "import-csv":  # read and check the file before touching the database
        try:
            data = args.file.read_bytes() if args.file.stat().st_size <= csv_import.MAX_BYTES else b"x" * (csv_import.MAX_BYTES + 1)
            rows = csv_import.parse(data)
        except OSError as exc:
            print(f"teleicu facility: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return 1
        except csv_import.CsvRefused as exc:
            print(f"teleicu facility: {args.file}: nothing imported, {len(exc.errors)} error(s):", file=sys.stderr)
            for e in exc.errors[:50]:
                print(f"  line {e['line']}{', ' + e['field'] if e['field'] else ''}: {e['detail']}", file=sys.stderr)
            return 1
    engine = make_engine(args.db, pool_size=1)
    try:
        store.migrate(engine)
        kpi_store.migrate(engine)
        if args.facility_command == "migrate":
            print(f"teleicu facility: {engine.url.render_as_string(hide_password=True)} is at the newest schema", file=sys.stderr)
            return 0
        by = args.by or f"cli:{getpass.getuser()}"
        created, updated = store.Store(engine, wall_ms).import_rows(rows, by)
    finally:
        engine.dispose()
    print(f"teleicu facility: imported {len(rows)} facilities from {args.file} ({created} new, {updated} updated)", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from records_bridge.services.facility.app import create_app

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s facility %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(args.db, hub_url=args.hub, stale_after_s=args.stale_after_s, tile_url=args.tile_url,
                         tile_attribution=args.tile_attribution, outlines=args.outlines)  # fmt: skip
    except ValueError as exc:
        print(f"teleicu facility: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(), timeout_graceful_shutdown=2)
    return 0
