"""The records services' databases for tests: a SQLite file, or a fresh schema in the local PostgreSQL.

PostgreSQL is not optional: when it cannot be reached the test fails, it does
not skip. ``TELEICU_TEST_PG_URL`` names another server (default: the local one).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine

PG_URL = os.environ.get("TELEICU_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
KINDS = ("sqlite", "postgresql")


@contextmanager
def records_database(kind: str, tmp_path: Path, prefix: str = "ehr_test") -> Iterator[str]:
    """A SQLAlchemy URL: a SQLite file in ``tmp_path``, or a PostgreSQL schema of its own, dropped afterwards; a
    ``kind`` that is itself a URL (a benchmark pointed at another server) is used as it is."""
    if "://" in kind:
        yield kind
        return
    if kind == "sqlite":
        yield f"sqlite+pysqlite:///{tmp_path / 'ehr.sqlite3'}"
        return
    schema = f"{prefix}_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:  # raises (and so fails the test) when PostgreSQL is not there
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()
