"""The ``teleicu`` entry point: one parser, a subcommand per role.

Imports for each role happen inside its subcommand, so an edge gateway
(installed with ``teleicu[edge]``) never imports the hub's FastAPI stack.
Configuration is loaded here (``teleicu.config_files``: the file given, else the
packaged default) and handed to the role; a file that cannot be used ends the
command with its problems (file, key, problem) and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from teleicu import config_files
from wire.config import ConfigError


def _score(args: argparse.Namespace) -> int:
    from alerts.score_csv import ScoreCsvError, score_csv

    try:
        tables = config_files.score_tables(args.scores)
        with open(args.file, newline="", encoding="utf-8") as src:
            if args.output:
                with open(args.output, "w", newline="", encoding="utf-8") as dst:
                    report = score_csv(src, dst, tables=tables)
            else:
                report = score_csv(src, sys.stdout, tables=tables)
    except (OSError, ScoreCsvError, ConfigError) as exc:
        print(f"teleicu score: {exc}", file=sys.stderr)
        return 2
    print(
        f"teleicu score: {report.rows} rows, {report.scored_complete} complete, "
        f"{report.incomplete} incomplete, {report.rows_with_errors} with input errors",
        file=sys.stderr,
    )
    return 1 if report.rows_with_errors else 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="teleicu", description="Real-time tele-ICU: monitors -> edge -> hub -> scores -> console")
    sub = ap.add_subparsers(dest="command", required=True)

    from teleicu.demo import add_demo_arguments

    add_demo_arguments(sub.add_parser("demo", help="the whole system on this machine with simulated beds"))

    hub = sub.add_parser("hub", help="run the ingest hub (FastAPI + uvicorn)")
    hub.add_argument("--host", default="127.0.0.1")
    hub.add_argument("--port", type=int, default=8080)
    hub.add_argument("--data-dir", type=Path, default=Path("var"),
                     help="where the hub keeps its files: the embedded store, InfluxDB's state file (default ./var)")  # fmt: skip
    hub.add_argument("--db", type=Path, default=None, help="embedded store file (SQLite, WAL; default <data-dir>/teleicu.sqlite3)")
    hub.add_argument("--store", default=None, help="store URL (overrides --db); see ingest/stores/__init__.py")
    hub.add_argument("--state", default=None,
                     help="where users, alarms, patients and the outbox live: postgresql://... (default: with the store)")  # fmt: skip
    config_files.add_hub_arguments(hub)
    hub.add_argument("--log-level", default="warning")

    edge = sub.add_parser("edge", help="run an edge agent from its YAML config")
    edge.add_argument("--config", type=Path, required=True, help="edge agent YAML")
    edge.add_argument("--stats-file", type=Path, default=None, help="write counters as JSON here on exit")
    edge.add_argument("--record", type=Path, default=None,
                      help="append every sample once spooled, as JSON lines (wire/sample_record.py): observations and "
                           "waveform chunks with a digest of their samples (audit, counting tests)")  # fmt: skip
    edge.add_argument("--log-level", default="warning")

    sim = sub.add_parser("sim", help="simulated bedside monitors on pty serial ports", add_help=False)
    sim.add_argument("sim_args", nargs=argparse.REMAINDER)

    bridge = sub.add_parser("bridge", help="run the records bridge: the hub's outbox into the EHR (FHIR R4)")
    bridge.add_argument("--config", type=Path, required=True, help="the bridge's YAML (records_bridge/bridge/config.py)")
    bridge.add_argument("--log-level", default="warning")
    bridge.add_argument("--parked", action="store_true", help="list the events the bridge parked (as JSON lines), then exit")

    ehr = sub.add_parser("ehr", help="the EHR lighter service: a FHIR R4 REST subset (serve, migrate, clients, count)")
    from records_bridge.services.ehr.cli import add_ehr_arguments

    add_ehr_arguments(ehr)

    queue = sub.add_parser("queue", help="the OPD token queue lighter service (serve, migrate, credentials)")
    from records_bridge.services.queue.cli import add_queue_arguments

    add_queue_arguments(queue)

    locker = sub.add_parser("locker", help="the Digi Health Locker: patients' own records and consents (serve, migrate)")
    from records_bridge.services.locker.cli import add_locker_arguments

    add_locker_arguments(locker)

    facility = sub.add_parser("facility", help="the facility registry and its map: beds, live ICU occupancy, GeoJSON (serve, migrate, import-csv)")
    from records_bridge.services.facility.cli import add_facility_arguments

    add_facility_arguments(facility)

    from teleicu.admin import add_admin_arguments

    add_admin_arguments(sub)

    score = sub.add_parser("score", help="re-score a CSV of observations with NEWS2, MEWS and qSOFA (audit tool)")
    score.add_argument("file", type=Path)
    score.add_argument("-o", "--output", type=Path, default=None, help="write here instead of standard output")
    score.add_argument("--scores", type=Path, default=None, help="score tables YAML (default: the packaged config/scores.yaml)")
    return ap


def _hub(args: argparse.Namespace) -> int:
    try:
        cfg = config_files.hub_config(args.config)
        policy = config_files.alarm_policy(args.alarms)
        tables = config_files.score_tables(args.scores)
    except ConfigError as exc:
        print(f"teleicu hub: {exc}", file=sys.stderr)
        return 2
    from ingest.server import hub_main

    return hub_main(args, cfg, policy, tables)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "sim":  # the simulator owns its options
        from simulators.ward import ward_main

        return ward_main(argv[1:]) or 0
    args = build_parser().parse_args(argv)
    if args.command == "hub":
        return _hub(args)
    if args.command == "edge":
        from edge_agent.agent import edge_main

        try:
            return edge_main(args)
        except ConfigError as exc:  # the gateway's YAML: every problem named, nothing started
            print(f"teleicu edge: {exc}", file=sys.stderr)
            return 2
    if args.command == "score":
        return _score(args)
    if args.command == "bridge":
        from records_bridge.bridge.cli import main as bridge_main

        logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s bridge %(levelname)s %(name)s: %(message)s")
        return bridge_main(args)
    if args.command == "ehr":
        from records_bridge.services.ehr.cli import run_ehr

        return run_ehr(args)
    if args.command == "queue":
        from records_bridge.services.queue.cli import run_queue

        return run_queue(args)
    if args.command == "locker":
        from records_bridge.services.locker.cli import run_locker

        return run_locker(args)
    if args.command == "facility":
        from records_bridge.services.facility.cli import run_facility

        return run_facility(args)
    if args.command in ("users", "agents", "audit"):
        from teleicu.admin import admin_main

        return admin_main(args)
    if args.command == "demo":
        from teleicu.demo import demo_main

        return demo_main(args)
    raise AssertionError(args.command)
