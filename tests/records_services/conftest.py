"""Fixtures for the records services: a database of each kind (a SQLite file; a fresh schema in the local PostgreSQL).

PostgreSQL is not optional: when it cannot be reached the tests fail, they do
not skip. ``TELEICU_TEST_PG_URL`` names another server (default: the local one).
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "records_bridge"))  # fhir_stay: the events the mapping tests use

from records_bridge.services.ehr.app import create_app  # noqa: E402
from records_bridge.services.ehr.clients import add_client  # noqa: E402
from records_bridge.services.ehr.store import Store  # noqa: E402

PG_URL = os.environ.get("TELEICU_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+pysqlite:///{tmp_path / 'ehr.sqlite3'}"
        return
    schema = f"ehr_test_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:  # raises (and so fails the test) when PostgreSQL is not there
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


@dataclass
class Ehr:
    http: TestClient
    store: Store
    url: str
    writer: str  # bearer secrets
    reader: str

    def headers(self, secret: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret or self.writer}", "Content-Type": "application/fhir+json"} | extra


@pytest.fixture
def ehr(db_url: str) -> Iterator[Ehr]:
    app = create_app(db_url)
    store: Store = app.state.store
    writer = add_client(store.engine, "bridge", "writer")
    reader = add_client(store.engine, "console", "reader")
    with TestClient(app, raise_server_exceptions=False) as http:
        yield Ehr(http, store, db_url, writer, reader)
    store.engine.dispose()
