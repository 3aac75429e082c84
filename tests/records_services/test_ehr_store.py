"""The EHR's store and migrations, on SQLite and PostgreSQL: concurrent writers, a second migration, counting."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from ehr_resources import observation
from sqlalchemy import text

from records_bridge.services.db import current_revision, make_engine
from records_bridge.services.ehr.store import VERSION_TABLE, Store, count_by_type, migrate


def test_migrating_twice_is_a_no_op(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate(engine)
        Store(engine).put(observation("o1"))
        migrate(engine)
        assert current_revision(engine, VERSION_TABLE) == "0001"
        with engine.connect() as conn:
            assert conn.execute(text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar_one() == 1
        assert count_by_type(db_url) == {"Observation": 1}
    finally:
        engine.dispose()


def test_concurrent_puts_of_one_id_make_one_row_and_every_version_once(db_url: str) -> None:
    engine = make_engine(db_url, pool_size=20)
    try:
        migrate(engine)
        store = Store(engine)
        start = threading.Barrier(20)

        def write(i: int) -> tuple[int, bool]:
            start.wait()
            stored, created = store.put(observation("same", value=i % 10))  # ten distinct contents, each twice
            return stored.version_id, created

        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(write, range(20)))
        assert sum(created for _, created in results) == 1
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM ehr_resources")).scalar_one() == 1
            final = conn.execute(text("SELECT version_id FROM ehr_resources")).scalar_one()
            versions = [v for (v,) in conn.execute(text("SELECT version_id FROM ehr_history WHERE id = 'same' ORDER BY version_id"))]
            index_rows = conn.execute(text("SELECT count(*) FROM ehr_search WHERE param = 'patient'")).scalar_one()
        assert versions == list(range(1, final + 1))  # no gap, no double
        assert 10 <= final <= 20  # an equal content right after its twin writes nothing
        assert index_rows == 1  # the index holds the current version only
        assert store.read("Observation", "same") is not None
    finally:
        engine.dispose()


def test_concurrent_conditional_creates_make_one_resource(db_url: str) -> None:
    engine = make_engine(db_url, pool_size=10)
    try:
        migrate(engine)
        store = Store(engine)
        start = threading.Barrier(10)
        patient = {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "42"}]}

        def create(_: int) -> tuple[str, bool]:
            start.wait()
            stored, created = store.conditional_create(patient, "identifier=urn:mrn|42")
            return stored.id, created

        with ThreadPoolExecutor(10) as pool:
            results = list(pool.map(create, range(10)))
        assert sum(created for _, created in results) == 1
        assert len({ident for ident, _ in results}) == 1
        assert count_by_type(db_url) == {"Patient": 1}
    finally:
        engine.dispose()
