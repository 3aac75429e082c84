"""The registry's database: facilities, their services, capacity per bed type and the latest ICU occupancy.

Every change runs in one write transaction (``db.write_transaction``); a CSV import is one transaction for the
whole file, so it lands whole or not at all. A capacity figure keeps who changed it and when, and is touched only
when it changes (importing the same file again changes no time stamp). An occupancy report older (by ``as_of``)
than the one kept is not stored: reports can arrive out of order, and the newest census wins.

``search`` is the GeoJSON API's query: SQL narrows the rows on indexed columns (district, type, the latitude and
longitude box around a point, a free-bed count that is fresh), the exact great-circle distance and the radius are
computed on what is left, and capacities are read only for the rows that are answered.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Connection, Engine, Float, Integer, MetaData, Table, Text, and_, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite

from records_bridge.services.db import migrate_to_head, write_transaction
from records_bridge.services.facility.kpi.facilities import FacilityRef
from records_bridge.services.facility.geo import bounding_box, haversine_km
from records_bridge.services.facility.problems import Problem

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "facility_alembic_version"

md = MetaData()
facilities = Table(
    "facility_facilities", md,
    Column("facility_id", Text, primary_key=True), Column("name", Text), Column("type", Text), Column("ownership", Text),
    Column("state", Text), Column("state_lgd", Integer), Column("district", Text), Column("district_key", Text),
    Column("district_lgd", Integer), Column("subdistrict", Text), Column("subdistrict_lgd", Integer), Column("address", Text),
    Column("pincode", Text), Column("lat", Float), Column("lon", Float), Column("specialities", Text), Column("services", Text),
    Column("status", Text), Column("phone", Text), Column("email", Text), Column("verified", Boolean), Column("verified_by", Text),
    Column("verified_ms", BigInteger), Column("created_ms", BigInteger), Column("updated_ms", BigInteger), Column("updated_by", Text),
)  # fmt: skip
services = Table("facility_services", md, Column("facility_id", Text, primary_key=True), Column("service", Text, primary_key=True))
capacity = Table(
    "facility_capacity", md, Column("facility_id", Text, primary_key=True), Column("bed_type", Text, primary_key=True),
    Column("licensed", Integer), Column("staffed", Integer), Column("updated_ms", BigInteger), Column("updated_by", Text),
)  # fmt: skip
occupancy = Table(
    "facility_occupancy", md, Column("facility_id", Text, primary_key=True), Column("as_of_ms", BigInteger),
    Column("icu_beds", Integer), Column("occupied", Integer), Column("free", Integer), Column("news2_high", Integer),
    Column("monitors_offline", Integer), Column("source", Text), Column("received_ms", BigInteger), Column("received_by", Text),
)  # fmt: skip

OCC_COLUMNS = ("as_of_ms", "icu_beds", "occupied", "free", "news2_high", "monitors_offline", "source", "received_ms", "received_by")
#: the radii (km) a nearest-first search without a radius widens through; past the last, every row that matches
WIDENING_KM = (25.0, 100.0, 400.0)


def migrate(engine: Engine) -> None:
    """The registry's schema at its newest revision (a no-op when it is there already)."""
    migrate_to_head(engine, MIGRATIONS, VERSION_TABLE)


@dataclass(frozen=True, slots=True)
class Query:
    """The GeoJSON API's filters. ``fresh_since_ms``: an occupancy taken before it is stale (never matches min_free_icu)."""

    fresh_since_ms: int
    limit: int
    district: str | None = None
    type: str | None = None
    service: str | None = None
    min_free_icu: int | None = None
    near: tuple[float, float] | None = None
    radius_km: float | None = None


def _upsert(conn: Connection, table: Table, values: dict[str, Any], keys: Sequence[str]) -> None:
    ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table).values(**values)
    conn.execute(ins.on_conflict_do_update(index_elements=list(keys), set_={k: v for k, v in values.items() if k not in keys}))


class Store:
    def __init__(self, engine: Engine, clock: Callable[[], int]) -> None:
        self.engine, self.clock = engine, clock

    # ------------------------------------------------------------------------------------------------- writing

    def put_facility(self, facility_id: str, fields: dict[str, Any], who: str) -> bool:
        """Create or replace a facility's fields (its verification, capacity not given and occupancy are kept); True if new."""
        with write_transaction(self.engine) as conn:
            return self._put(conn, facility_id, fields, who, self.clock())

    def import_rows(self, rows: Iterable[tuple[str, dict[str, Any]]], who: str) -> tuple[int, int]:
        """Every row in one transaction: (created, updated)."""
        created = updated = 0
        now = self.clock()
        with write_transaction(self.engine) as conn:
            for facility_id, fields in rows:
                if self._put(conn, facility_id, fields, who, now):
                    created += 1
                else:
                    updated += 1
        return created, updated

    def _put(self, conn: Connection, facility_id: str, fields: dict[str, Any], who: str, now: int) -> bool:
        f = dict(fields)
        cap = f.pop("capacity", {})
        new = conn.execute(select(facilities.c.facility_id).where(facilities.c.facility_id == facility_id)).first() is None
        row = f | {"specialities": json.dumps(f["specialities"]), "services": json.dumps(f["services"]),
                   "district_key": f["district"].casefold(), "updated_ms": now, "updated_by": who}  # fmt: skip
        if new:
            conn.execute(facilities.insert().values(facility_id=facility_id, verified=False, created_ms=now, **row))
        else:
            conn.execute(facilities.update().where(facilities.c.facility_id == facility_id).values(**row))
            conn.execute(services.delete().where(services.c.facility_id == facility_id))
        if f["services"]:
            conn.execute(services.insert(), [{"facility_id": facility_id, "service": s} for s in f["services"]])
        self._capacity(conn, facility_id, cap, who, now)
        return new

    def put_capacity(self, facility_id: str, cap: dict[str, dict[str, int]], who: str) -> None:
        with write_transaction(self.engine) as conn:
            self._exists(conn, facility_id)
            self._capacity(conn, facility_id, cap, who, self.clock())

    @staticmethod
    def _capacity(conn: Connection, facility_id: str, cap: dict[str, dict[str, int]], who: str, now: int) -> None:
        if not cap:
            return
        old = {r.bed_type: (r.licensed, r.staffed) for r in conn.execute(select(capacity).where(capacity.c.facility_id == facility_id))}
        for bed_type, fig in cap.items():
            if old.get(bed_type) != (fig["licensed"], fig["staffed"]):
                _upsert(conn, capacity, {"facility_id": facility_id, "bed_type": bed_type, "licensed": fig["licensed"],
                                         "staffed": fig["staffed"], "updated_ms": now, "updated_by": who}, ("facility_id", "bed_type"))  # fmt: skip

    def verify(self, facility_id: str, verified: bool, who: str) -> None:
        with write_transaction(self.engine) as conn:
            self._exists(conn, facility_id)
            values = {"verified": verified, "verified_by": who, "verified_ms": self.clock()}
            conn.execute(facilities.update().where(facilities.c.facility_id == facility_id).values(**values))

    def put_occupancy(self, facility_id: str, occ: dict[str, Any], who: str) -> bool:
        """Keep a hub's census for the facility; False (nothing stored) if a newer one is kept already."""
        with write_transaction(self.engine) as conn:
            self._exists(conn, facility_id)
            kept = conn.execute(select(occupancy.c.as_of_ms).where(occupancy.c.facility_id == facility_id)).scalar()
            if kept is not None and kept > occ["as_of"]:
                return False
            values = {k: occ[k] for k in ("icu_beds", "occupied", "free", "news2_high", "monitors_offline", "source")}
            _upsert(conn, occupancy, {"facility_id": facility_id, "as_of_ms": occ["as_of"], "received_ms": self.clock(),
                                      "received_by": who, **values}, ("facility_id",))  # fmt: skip
            return True

    @staticmethod
    def _exists(conn: Connection, facility_id: str) -> None:
        if conn.execute(select(facilities.c.facility_id).where(facilities.c.facility_id == facility_id)).first() is None:
            raise Problem(404, f"no facility {facility_id[:20]!r} in the registry (an admin adds it first)", reason="no_facility")

    # ------------------------------------------------------------------------------------------------- reading

    def get(self, facility_id: str) -> dict[str, Any]:
        q = select(facilities, *(occupancy.c[c] for c in OCC_COLUMNS)).select_from(facilities.outerjoin(occupancy, occupancy.c.facility_id == facilities.c.facility_id))
        with self.engine.connect() as conn:
            row = conn.execute(q.where(facilities.c.facility_id == facility_id)).mappings().first()
            if row is None:
                raise Problem(404, f"no facility {facility_id[:20]!r} in the registry", reason="no_facility")
            return self._with_capacity(conn, [dict(row)])[0]

    def districts(self) -> list[dict[str, Any]]:
        q = (select(facilities.c.district_lgd, func.min(facilities.c.district).label("name"), func.count().label("facilities"))
             .group_by(facilities.c.district_lgd).order_by(func.min(facilities.c.district)))  # fmt: skip
        with self.engine.connect() as conn:
            return [{"lgd": r.district_lgd, "name": r.name, "facilities": r.facilities} for r in conn.execute(q)]

    def search(self, q: Query) -> tuple[list[dict[str, Any]], bool]:
        """The facilities matching ``q``, nearest first when it has a point (each with ``distance_km``), else by name;
        and whether more matched than ``q.limit``."""
        with self.engine.connect() as conn:
            if q.near is None:
                rows = [dict(r) for r in conn.execute(self._select(q).order_by(facilities.c.name, facilities.c.facility_id)
                                                      .limit(q.limit + 1)).mappings()]  # fmt: skip
                return self._with_capacity(conn, rows[: q.limit]), len(rows) > q.limit
            radii = (q.radius_km,) if q.radius_km is not None else (*WIDENING_KM, None)
            for r in radii:
                hits = self._within(conn, q, r)
                if r is None or len(hits) > q.limit or r == q.radius_km:
                    return self._with_capacity(conn, hits[: q.limit]), len(hits) > q.limit
        raise AssertionError("unreachable")

    def _within(self, conn: Connection, q: Query, radius_km: float | None) -> list[dict[str, Any]]:
        lat, lon = q.near  # type: ignore[misc]
        sel = self._select(q)
        if radius_km is not None:
            lat0, lat1, lon0, lon1 = bounding_box(lat, lon, radius_km)
            sel = sel.where(facilities.c.lat.between(lat0, lat1), facilities.c.lon.between(lon0, lon1))
        out = []
        for row in conn.execute(sel).mappings():
            d = haversine_km(lat, lon, row["lat"], row["lon"])
            if radius_km is None or d <= radius_km:
                out.append(dict(row) | {"distance_km": d})
        out.sort(key=lambda r: (r["distance_km"], r["facility_id"]))
        return out

    @staticmethod
    def _select(q: Query):  # type: ignore[no-untyped-def]
        sel = select(facilities, *(occupancy.c[c] for c in OCC_COLUMNS)).select_from(facilities.outerjoin(occupancy, occupancy.c.facility_id == facilities.c.facility_id))
        if q.district is not None:
            d = q.district.strip()
            sel = sel.where(facilities.c.district_lgd == int(d) if d.isascii() and d.isdigit() and len(d) <= 3 else facilities.c.district_key == d.casefold())
        if q.type is not None:
            sel = sel.where(facilities.c.type == q.type)
        if q.service is not None:
            sel = sel.where(exists().where(and_(services.c.facility_id == facilities.c.facility_id, services.c.service == q.service)))
        if q.min_free_icu is not None:
            sel = sel.where(occupancy.c.free >= q.min_free_icu, occupancy.c.as_of_ms >= q.fresh_since_ms)
        return sel

    @staticmethod
    def _with_capacity(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        by_id = {r["facility_id"]: r for r in rows}
        for r in rows:
            r["capacity"] = {}
            r["specialities"], r["services"] = json.loads(r["specialities"]), json.loads(r["services"])
        ids = list(by_id)
        for i in range(0, len(ids), 500):
            for c in conn.execute(select(capacity).where(capacity.c.facility_id.in_(ids[i : i + 500]))):
                by_id[c.facility_id]["capacity"][c.bed_type] = {"licensed": c.licensed, "staffed": c.staffed,
                                                                "updated_ms": c.updated_ms, "updated_by": c.updated_by}  # fmt: skip
        return rows



def kpi_facilities(conn: Connection) -> list[FacilityRef]:
    """The registry's facilities as the KPI dashboard names them, with today's staffed ICU beds (None when the registry
    has no ICU capacity for one: its occupancy KPI is then not computed, never divided by a guess)."""
    icu = capacity.alias("icu")
    rows = conn.execute(
        select(facilities.c.facility_id, facilities.c.name, facilities.c.state, facilities.c.district, icu.c.staffed)
        .select_from(facilities.outerjoin(icu, and_(icu.c.facility_id == facilities.c.facility_id, icu.c.bed_type == "icu")))
        .order_by(facilities.c.state, facilities.c.district, facilities.c.name)
    ).all()
    return [FacilityRef(r.facility_id, r.name, r.state, r.district, r.staffed) for r in rows]
