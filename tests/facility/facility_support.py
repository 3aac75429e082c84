"""Support for the facility registry's tests: a frozen clock, a valid facility body, a synthetic set of facilities
whose distances are known by hand, the app under uvicorn on a real socket, and the GeoJSON schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from support import serving, token

from records_bridge.services.facility.app import create_app

HERE = Path(__file__).resolve().parent
T0 = 1_714_550_400_000  # 2024-05-01T08:00Z


@dataclass
class FrozenClock:
    """Milliseconds since the epoch that move only when a test moves them."""

    now: int = T0

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


def facility_body(name: str, *, lat: float = 26.9, lon: float = 75.8, district: str = "Jaipur", district_lgd: int = 110,
                  type_: str = "district_hospital", services: tuple[str, ...] = ("icu", "tele_icu"),
                  capacity: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:  # fmt: skip
    """A valid facility (Rajasthan, LGD state code 8; the district codes are the test's own)."""
    return {"name": name, "type": type_, "ownership": "government", "state": "Rajasthan", "state_lgd": 8, "district": district,
            "district_lgd": district_lgd, "subdistrict": "Sanganer", "subdistrict_lgd": 564, "address": "JLN Marg", "pincode": "302004",
            "lat": lat, "lon": lon, "specialities": ["critical_care", "general_medicine"], "services": list(services),
            "status": "operational", "phone": "0141-2560291", "email": "icu@example.org",
            "capacity": capacity if capacity is not None else {"icu": {"licensed": 20, "staffed": 12}, "general": {"licensed": 200, "staffed": 180}}}  # fmt: skip


#: the synthetic set around CENTRE (26.9 N, 75.8 E): (id, name, lat, lon, district, district LGD, type, services)
CENTRE = (26.9, 75.8)
SYNTHETIC = [
    ("IN0810000001", "Centre Hospital", 26.9, 75.8, "Jaipur", 110, "medical_college", ("icu", "tele_icu", "ct")),
    ("IN0810000002", "North 0.1 CHC", 27.0, 75.8, "Jaipur", 110, "chc", ("emergency",)),
    ("IN0810000003", "North 0.3 District Hospital", 27.2, 75.8, "Jaipur", 110, "district_hospital", ("icu", "tele_icu")),
    ("IN0810000004", "East 0.4 PHC", 26.9, 76.2, "Dausa", 111, "phc", ()),
    ("IN0810000005", "North 0.5 Hospital", 27.4, 75.8, "Sikar", 112, "private_hospital", ("icu",)),
    ("IN0810000006", "North 1.0 Hospital", 27.9, 75.8, "Sikar", 112, "district_hospital", ("icu", "tele_icu")),
    ("IN0810000007", "South 2.0 Hospital", 24.9, 75.8, "Kota", 113, "medical_college", ("icu", "tele_icu", "mri")),
]
#: great-circle distances from CENTRE, worked by hand on a sphere of radius 6371.0088 km: along the meridian
#: d = R * dlat (rad) = 111.1951 km per degree; along the parallel d = 2R asin(cos(26.9 deg) sin(0.2 deg)) = 39.665 km
DISTANCE_KM = {"IN0810000001": 0.0, "IN0810000002": 11.120, "IN0810000003": 33.359, "IN0810000004": 39.665, "IN0810000005": 55.598,
               "IN0810000006": 111.195, "IN0810000007": 222.390}  # fmt: skip


def synthetic_bodies() -> list[tuple[str, dict[str, Any]]]:
    return [(fid, facility_body(name, lat=lat, lon=lon, district=d, district_lgd=lgd, type_=t, services=s))
            for fid, name, lat, lon, d, lgd, t, s in SYNTHETIC]  # fmt: skip


def occupancy_body(as_of: int, icu_beds: int = 10, free: int = 3, *, news2_high: int = 1, monitors_offline: int = 0) -> dict[str, Any]:
    return {"as_of": as_of, "icu_beds": icu_beds, "occupied": icu_beds - free, "free": free, "news2_high": news2_high,
            "monitors_offline": monitors_offline, "source": "hub-jaipur"}  # fmt: skip


def geojson_schema() -> dict[str, Any]:
    return json.loads((HERE / "geojson.schema.json").read_text())


@dataclass
class Served:
    base: str
    clock: FrozenClock
    app: Any
    http: httpx.Client
    hub_base: str
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(self.hub_base, user)}"}


@contextmanager
def serve_facility(db_url: str, hub_base: str, clock: FrozenClock | None = None, **kw: Any) -> Iterator[Served]:
    """The registry (clock injected) under uvicorn in a thread on a free port; stopped afterwards."""
    clock = clock or FrozenClock()
    app = create_app(db_url, hub_url=hub_base, clock=clock, **kw)
    with serving(app, "facility registry") as base, httpx.Client(base_url=base, timeout=10) as http:
        yield Served(base, clock, app, http, hub_base)


def load_synthetic(s: Served) -> None:
    """The synthetic set, as an admin puts it through the API."""
    admin = s.auth("admin")
    for fid, body in synthetic_bodies():
        r = s.http.put(f"/api/facilities/{fid}", json=body, headers=admin)
        assert r.status_code == 201, r.text


def problem(r: httpx.Response, status: int, reason: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["reason"] == reason and body["detail"], body
    return body
