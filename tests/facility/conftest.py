"""Fixtures for the facility registry: a database of each kind (``records_db_support``), a store on it, a frozen clock."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # facility_support

from facility_support import FrozenClock  # noqa: E402
from records_db_support import KINDS, records_database  # noqa: E402

from records_bridge.services.db import make_engine  # noqa: E402
from records_bridge.services.facility.store import Store, migrate  # noqa: E402


@pytest.fixture(params=KINDS)
def facility_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with records_database(request.param, tmp_path, prefix="facility_test") as url:
        yield url


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def store(facility_db: str, clock: FrozenClock) -> Iterator[Store]:
    engine = make_engine(facility_db)
    migrate(engine)
    yield Store(engine, clock)
    engine.dispose()
