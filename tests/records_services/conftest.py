"""Fixtures for the records services: a database of each kind (``records_db_support``) and the EHR app on it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "records_bridge"))  # fhir_stay: the events the mapping tests use

from records_db_support import KINDS, records_database  # noqa: E402

from records_bridge.services.ehr.app import create_app  # noqa: E402
from records_bridge.services.ehr.clients import add_client  # noqa: E402
from records_bridge.services.ehr.store import Store  # noqa: E402


@pytest.fixture(params=KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with records_database(request.param, tmp_path) as url:
        yield url


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
