"""Fixtures for the locker: a database of each kind (``records_db_support``), a store on it, a clock tests move by hand."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # locker_support

from records_db_support import KINDS, records_database  # noqa: E402

from records_bridge.services.db import make_engine  # noqa: E402
from records_bridge.services.locker.store import Store, migrate  # noqa: E402


class Clock:
    """Milliseconds since the epoch, moved only by the test."""

    def __init__(self, ms: int = 1_714_550_400_000) -> None:  # 2024-05-01T08:00Z
        self.ms = ms

    def __call__(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


@pytest.fixture(params=KINDS)
def locker_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with records_database(request.param, tmp_path, prefix="locker_test") as url:
        yield url


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(locker_db: str) -> Iterator[Store]:
    engine = make_engine(locker_db)
    migrate(engine)
    yield Store(engine, otp_key=b"o" * 32)
    engine.dispose()
