"""Command-line pieces the lighter services' commands share (``teleicu ehr|locker|queue``)."""

from __future__ import annotations

import argparse


def with_db(parser: argparse.ArgumentParser, default: str) -> argparse.ArgumentParser:
    """Give a subcommand the ``--db`` option: a SQLAlchemy URL, or a bare path taken as a SQLite file."""
    parser.add_argument("--db", default=default, help=f"database URL or SQLite file (default {default})")
    return parser
