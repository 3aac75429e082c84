"""The EHR's database: resources (current version), their history, the search index, and the API clients' table.

Every write runs in one transaction that takes the resource's lock first
(``SELECT … FOR UPDATE`` on PostgreSQL; the database's write lock, taken by
``BEGIN IMMEDIATE``, on SQLite), so versions of one resource are never lost
or doubled. Two first writes of the same id race on ``UNIQUE(type, id)``: the
loser's transaction is rolled back and run again, and then finds the row. A
``PUT`` whose content equals the stored one (``meta`` aside) writes nothing.
The index rows of a resource are rewritten with each version (``search.index_entries``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import Alias, Select

from records_bridge.services.db import make_engine, migrate_to_head, write_transaction
from records_bridge.services.ehr.search import Clause, DateRange, SearchError, SearchQuery, Token, index_entries, parse_search

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "ehr_alembic_version"
WRITE_ATTEMPTS = 8

metadata = MetaData()
resources = Table(
    "ehr_resources", metadata,
    Column("row_id", Integer, primary_key=True, autoincrement=True),
    Column("type", Text, nullable=False),
    Column("id", Text, nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", Text, nullable=False),
    Column("content", Text, nullable=False),
)  # fmt: skip
history = Table(
    "ehr_history", metadata,
    Column("history_id", Integer, primary_key=True, autoincrement=True),
    Column("type", Text, nullable=False),
    Column("id", Text, nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", Text, nullable=False),
    Column("content", Text, nullable=False),
)  # fmt: skip
search_index = Table(
    "ehr_search", metadata,
    Column("row_id", Integer, nullable=False),
    Column("type", Text, nullable=False),
    Column("param", Text, nullable=False),
    Column("system", Text),
    Column("value", Text),
    Column("lo", BigInteger),
    Column("hi", BigInteger),
)  # fmt: skip
clients_table = Table(
    "ehr_clients", metadata,
    Column("name", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("secret_hash", Text, nullable=False),
    Column("created", Text, nullable=False),
)  # fmt: skip


def migrate(engine: Engine) -> None:
    """The EHR's schema at its newest revision (a no-op when it is there already)."""
    migrate_to_head(engine, MIGRATIONS, VERSION_TABLE)


def now_instant() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dumps(resource: dict[str, Any]) -> str:
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":"))


def _sans_meta(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without what the server sets (``meta.versionId``, ``meta.lastUpdated``): a change of profile,
    tag or security label is a change."""
    out = {k: v for k, v in resource.items() if k != "meta"}
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    return out | ({"meta": meta} if meta else {})


@dataclass(frozen=True, slots=True)
class Stored:
    """A resource as stored: its current version and JSON (with the server's ``meta``)."""

    row_id: int
    type: str
    id: str
    version_id: int
    last_updated: str
    content: str

    def resource(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.content)
        return loaded


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    rows: list[Stored]
    more: bool  # another page follows; its cursor is rows[-1].row_id


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------------------------------------------- reads

    def read(self, kind: str, ident: str) -> Stored | None:
        with self.engine.connect() as conn:
            return _select_one(conn, kind, ident)

    def search(self, query: SearchQuery) -> Page:
        total_q, page_q = _search_statements(query)
        with self.engine.connect() as conn:
            total = conn.execute(total_q).scalar_one()
            if query.count == 0:
                return Page(total, [], False)
            rows = conn.execute(page_q).all()
        page = [Stored(*r) for r in rows[: query.count]]
        return Page(total, page, len(rows) > query.count)

    # ------------------------------------------------------------------------------------------------ writes

    def put(self, resource: dict[str, Any]) -> tuple[Stored, bool]:
        """Create or update ``resource`` at its own id: the stored version and whether it was created.

        Content equal to the stored version's (``meta`` aside) writes nothing and returns that version.
        """
        kind, ident = str(resource["resourceType"]), str(resource["id"])
        return self._retrying(lambda conn: self._put(conn, kind, ident, resource))

    def create(self, resource: dict[str, Any]) -> Stored:
        """A new resource under a new server-assigned id (any id in ``resource`` is ignored, as FHIR says)."""
        return self._retrying(lambda conn: (self._insert(conn, str(resource["resourceType"]), str(uuid.uuid4()), resource), True))[0]

    def conditional_create(self, resource: dict[str, Any], criteria: str) -> tuple[Stored, bool]:
        """Create unless ``criteria`` (a search, e.g. ``identifier=<system>|<value>``) matches: then the match, not created.

        ``SearchError`` for criteria that are not a search of this type; ``MultipleMatches`` when more than one matches.
        """
        kind = str(resource["resourceType"])
        query = parse_search(kind, parse_qsl(criteria, keep_blank_values=True, strict_parsing=False))
        if not query.clauses:
            raise SearchError(f"If-None-Exist needs search criteria, e.g. identifier=<system>|<value>, not {criteria!r}")

        def attempt(conn: Connection) -> tuple[Stored, bool]:
            if conn.dialect.name == "postgresql":  # two creates with the same criteria, however spelled: one at a time
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(%(k)s))", {"k": f"ehr:{kind}?{sorted(map(repr, query.clauses))}"})
            found = conn.execute(_search_statements(SearchQuery(kind, query.clauses, count=1))[1]).all()
            if len(found) > 1:
                raise MultipleMatches(f"If-None-Exist {criteria!r} matches more than one {kind}")
            if found:
                return Stored(*found[0]), False
            return self._insert(conn, kind, str(uuid.uuid4()), resource), True

        return self._retrying(attempt)

    def load(self, batch: list[dict[str, Any]]) -> None:
        """Insert new resources (ids not yet stored, content already validated) in one transaction: an initial load.

        A stored id makes the whole batch fail (``IntegrityError``); use ``put`` for anything else.
        """
        with write_transaction(self.engine) as conn:
            for resource in batch:
                self._insert(conn, str(resource["resourceType"]), str(resource["id"]), resource)

    def _retrying(self, work: Any) -> Any:
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with write_transaction(self.engine) as conn:
                    return work(conn)
            except IntegrityError:  # a concurrent first write of the same id won the race: run again, find its row
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _put(self, conn: Connection, kind: str, ident: str, resource: dict[str, Any]) -> tuple[Stored, bool]:
        current = _select_one(conn, kind, ident, for_update=True)
        if current is None:
            return self._insert(conn, kind, ident, resource), True
        if _sans_meta(current.resource()) == _sans_meta(resource):
            return current, False
        version, when = current.version_id + 1, now_instant()
        content = _with_meta(resource, ident, version, when)
        conn.execute(update(resources).where(resources.c.row_id == current.row_id)
                     .values(version_id=version, last_updated=when, content=content))  # fmt: skip
        conn.execute(delete(search_index).where(search_index.c.row_id == current.row_id))
        stored = Stored(current.row_id, kind, ident, version, when, content)
        _index_and_history(conn, stored, resource)
        return stored, False

    def _insert(self, conn: Connection, kind: str, ident: str, resource: dict[str, Any]) -> Stored:
        when = now_instant()
        content = _with_meta(resource, ident, 1, when)
        row_id = conn.execute(insert(resources).values(type=kind, id=ident, version_id=1, last_updated=when, content=content)
                              .returning(resources.c.row_id)).scalar_one()  # fmt: skip
        stored = Stored(row_id, kind, ident, 1, when, content)
        _index_and_history(conn, stored, resource)
        return stored


class MultipleMatches(Exception):
    """A conditional create's criteria match more than one resource (a 412)."""


def _with_meta(resource: dict[str, Any], ident: str, version: int, when: str) -> str:
    meta = dict(resource.get("meta") or {}) | {"versionId": str(version), "lastUpdated": when}
    body = {"resourceType": resource["resourceType"], "id": ident, "meta": meta}
    body |= {k: v for k, v in resource.items() if k not in body}
    return dumps(body)


def _index_and_history(conn: Connection, stored: Stored, resource: dict[str, Any]) -> None:
    entries = index_entries(resource)
    if entries:
        conn.execute(insert(search_index), [
            {"row_id": stored.row_id, "type": stored.type, "param": e.param, "system": e.system, "value": e.value, "lo": e.lo, "hi": e.hi}
            for e in entries
        ])  # fmt: skip
    conn.execute(insert(history).values(type=stored.type, id=stored.id, version_id=stored.version_id,
                                        last_updated=stored.last_updated, content=stored.content))  # fmt: skip


def _select_one(conn: Connection, kind: str, ident: str, *, for_update: bool = False) -> Stored | None:
    q = select(*resources.c).where(resources.c.type == kind, resources.c.id == ident)
    row = conn.execute(q.with_for_update() if for_update else q).first()
    return None if row is None else Stored(*row)


# Which clause drives a search: the most selective first (an identifier or a reference names a few rows, a
# code thousands, a date range any number); the others are checked per row through the (row_id, param) index.
_SELECTIVITY = {"identifier": 0, "patient": 1, "encounter": 1, "code": 2, "date": 3}


def _search_statements(query: SearchQuery) -> tuple[Select[Any], Select[Any]]:
    """The count of all matches, and the page (``count + 1`` rows after the cursor, by row id: one more tells a next page exists).

    The most selective clause is read from the index in row-id order; the others are ``EXISTS``
    on the (row_id, param) index; only the page's rows are read from ``ehr_resources``. The JSON is never scanned.
    """
    if not query.clauses:
        where = [resources.c.type == query.type]
        total = select(func.count()).select_from(resources).where(*where)
        page = select(*resources.c).where(*where, resources.c.row_id > query.after).order_by(resources.c.row_id).limit(query.count + 1)
        return total, page
    ordered = sorted(query.clauses, key=lambda c: _SELECTIVITY.get(c.param, 9))
    s0 = search_index.alias("s0")
    where = [s0.c.type == query.type, s0.c.param == ordered[0].param, or_(*_alternatives(s0, ordered[0]))]
    for n, clause in enumerate(ordered[1:], start=1):
        s = search_index.alias(f"s{n}")
        where.append(exists().where(s.c.row_id == s0.c.row_id, s.c.param == clause.param, or_(*_alternatives(s, clause))))
    total = select(func.count(s0.c.row_id.distinct())).where(*where)
    ids = select(s0.c.row_id).where(*where, s0.c.row_id > query.after).distinct().order_by(s0.c.row_id).limit(query.count + 1)
    page = select(*resources.c).where(resources.c.row_id.in_(ids)).order_by(resources.c.row_id)
    return total, page


def _alternatives(s: Alias, clause: Clause) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    for alt in clause.alternatives:
        if isinstance(alt, Token):
            conds: list[ColumnElement[bool]] = []
            if alt.value is not None:
                conds.append(s.c.value == alt.value)
            if alt.system == "":
                conds.append(s.c.system.is_(None))
            elif alt.system is not None:
                conds.append(s.c.system == alt.system)
            out.append(and_(*conds))
        else:
            out.append(_date_condition(s, alt))
    return out


def _date_condition(s: Alias, d: DateRange) -> ColumnElement[bool]:
    lo, hi = s.c.lo, s.c.hi
    match d.prefix:
        case "eq":
            return and_(lo >= d.lo, hi <= d.hi)
        case "ge":
            return hi > d.lo
        case "gt":
            return hi > d.hi
        case "le":
            return lo < d.hi
        case "lt":
            return lo < d.lo
    raise AssertionError(d.prefix)


def count_by_type(url: str) -> dict[str, int]:
    """How many resources of each type the EHR at ``url`` holds (current versions)."""
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(resources.c.type, func.count()).group_by(resources.c.type).order_by(resources.c.type)).all()
        return {kind: n for kind, n in rows}
    finally:
        engine.dispose()
