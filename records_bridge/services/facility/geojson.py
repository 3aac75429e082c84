"""The registry's rows as RFC 7946 GeoJSON (a FeatureCollection of Points, ``[longitude, latitude]``) and as the
single-facility JSON, with the stale rule applied.

**The stale rule**: a facility's occupancy is fresh while its ``as_of`` (when its hub took the census) is at most
``stale_after_ms`` old. A facility with no occupancy, or an older one, is ``stale: true`` and its ``free`` is
``null``: the last count is never shown as beds free now. The other last-known figures stay, with their ``as_of``,
so a reader sees how old they are. The registry's own capacity figures (licensed and staffed) are not live and are
never stale; each carries when it was last changed and by whom.
"""

from __future__ import annotations

from typing import Any

from records_bridge.fhir.times import instant
from records_bridge.services.facility.vocab import FACILITY_TYPES, OWNERSHIP, STATUS

FIELDS = ("name", "type", "ownership", "state", "state_lgd", "district", "district_lgd", "subdistrict", "subdistrict_lgd", "address",
          "pincode", "specialities", "services", "status", "phone", "email")  # fmt: skip


def occupancy_view(row: dict[str, Any], now_ms: int, stale_after_ms: int) -> tuple[dict[str, Any] | None, bool, str | None]:
    """(occupancy or None, stale, stale_since): ``free`` is None when stale; ``stale_since`` is when it became stale."""
    if row.get("as_of_ms") is None:
        return None, True, None
    stale = now_ms - row["as_of_ms"] > stale_after_ms
    occ = {"icu_beds": row["icu_beds"], "occupied": row["occupied"], "free": None if stale else row["free"],
           "news2_high": row["news2_high"], "monitors_offline": row["monitors_offline"], "as_of": instant(row["as_of_ms"]),
           "source": row["source"], "received_at": instant(row["received_ms"])}  # fmt: skip
    return occ, stale, instant(row["as_of_ms"] + stale_after_ms) if stale else None


def properties(row: dict[str, Any], now_ms: int, stale_after_ms: int) -> dict[str, Any]:
    occ, stale, since = occupancy_view(row, now_ms, stale_after_ms)
    out: dict[str, Any] = {"facility_id": row["facility_id"], **{f: row[f] for f in FIELDS}}
    out["type_label"], out["ownership_label"] = FACILITY_TYPES[row["type"]], OWNERSHIP[row["ownership"]]
    out["status_label"] = STATUS[row["status"]]
    out["capacity"] = {t: {"licensed": c["licensed"], "staffed": c["staffed"], "updated_at": instant(c["updated_ms"]),
                           "updated_by": c["updated_by"]} for t, c in row["capacity"].items()}  # fmt: skip
    out["occupancy"], out["stale"], out["stale_since"] = occ, stale, since
    out["verified"] = {"verified": bool(row["verified"]), "by": row["verified_by"],
                       "at": instant(row["verified_ms"]) if row["verified_ms"] is not None else None}  # fmt: skip
    out["updated_at"], out["updated_by"] = instant(row["updated_ms"]), row["updated_by"]
    if "distance_km" in row:
        out["distance_km"] = round(row["distance_km"], 3)
    return out


def feature(row: dict[str, Any], now_ms: int, stale_after_ms: int) -> dict[str, Any]:
    return {"type": "Feature", "id": row["facility_id"], "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
            "properties": properties(row, now_ms, stale_after_ms)}  # fmt: skip


def collection(rows: list[dict[str, Any]], now_ms: int, stale_after_ms: int, *, truncated: bool, limit: int) -> dict[str, Any]:
    """The FeatureCollection; ``truncated``, ``limit`` and ``generated_at`` are foreign members (RFC 7946 §6.1)."""
    return {"type": "FeatureCollection", "features": [feature(r, now_ms, stale_after_ms) for r in rows],
            "truncated": truncated, "limit": limit, "stale_after_s": stale_after_ms / 1000, "generated_at": instant(now_ms)}  # fmt: skip


def facility_json(row: dict[str, Any], now_ms: int, stale_after_ms: int) -> dict[str, Any]:
    return properties(row, now_ms, stale_after_ms) | {"lat": row["lat"], "lon": row["lon"], "created_at": instant(row["created_ms"])}
