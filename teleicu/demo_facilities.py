"""The demo's hospitals in the facility registry: each simulated ward is one district hospital's ICU.

The registry is laid out as a state administrator would lay it out, through its
API: one hospital per ward, in a different Rajasthan district each (the first
ward in Jaipur, then Jodhpur, Kota, ...; past the eighth ward the districts come
round again with a second hospital a few kilometres off), with its ICU's
licensed and staffed beds, plus two hospitals that have no tele-ICU yet (no hub reports for them, so
the map shows them as "no live figures", never as free beds). The districts'
codes are the LGD (Census 2011) district codes and the coordinates the district
towns'; the hospitals are made up and left unverified.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

STATE, STATE_LGD = "Rajasthan", 8


@dataclass(frozen=True, slots=True)
class DemoDistrict:
    name: str
    lgd: int
    pincode: str
    lat: float
    lon: float


DISTRICTS = (
    DemoDistrict("Jaipur", 110, "302004", 26.9040, 75.8150),
    DemoDistrict("Jodhpur", 113, "342003", 26.2690, 73.0350),
    DemoDistrict("Kota", 127, "324001", 25.1800, 75.8400),
    DemoDistrict("Udaipur", 130, "313001", 24.5850, 73.7000),
    DemoDistrict("Ajmer", 119, "305001", 26.4650, 74.6380),
    DemoDistrict("Bikaner", 101, "334001", 28.0100, 73.3150),
    DemoDistrict("Bharatpur", 105, "321001", 27.2170, 77.4900),
    DemoDistrict("Sikar", 111, "332001", 27.6090, 75.1400),
)
WITHOUT_TELE_ICU = 2  # hospitals registered with an ICU but no hub: their figures are never live


def facility_id(n: int) -> str:
    """The demo's HFR-shaped id of its ``n``-th hospital (``IN08`` + the state's code + a serial)."""
    return f"IN08{n + 1:08d}"


def demo_registry(ward_beds: dict[str, int]) -> tuple[dict[str, str], list[tuple[str, dict]]]:
    """{ward: facility id} for the bridge, and each facility's registry body (ward hospitals first, in ward order)."""
    wards = sorted(ward_beds)
    mapping: dict[str, str] = {}
    bodies: list[tuple[str, dict]] = []
    for n in range(len(wards) + WITHOUT_TELE_ICU):
        district, round_ = DISTRICTS[n % len(DISTRICTS)], n // len(DISTRICTS)
        ward = wards[n] if n < len(wards) else None
        icu = ward_beds[ward] if ward else 12
        services = ["icu", "tele_icu"] if ward else ["icu"]
        body = {
            "name": f"{district.name} District Hospital (demo)" if round_ == 0 else f"{district.name} Satellite Hospital {round_} (demo)",
            "type": "district_hospital" if round_ == 0 else "satellite_hospital", "ownership": "government",
            "state": STATE, "state_lgd": STATE_LGD, "district": district.name, "district_lgd": district.lgd,
            "address": f"Hospital Road, {district.name}", "pincode": district.pincode, "lat": round(district.lat + 0.04 * round_, 4), "lon": round(district.lon + 0.04 * round_, 4),
            "specialities": ["general_medicine", "critical_care"], "services": services, "status": "operational",
            "capacity": {"icu": {"licensed": icu + 2, "staffed": icu}, "ventilator": {"licensed": icu // 2, "staffed": icu // 2},
                         "general": {"licensed": 200, "staffed": 180}},
        }  # fmt: skip
        fid = facility_id(n)
        if ward:
            mapping[ward] = fid
        bodies.append((fid, body))
    return mapping, bodies


def register(put: Callable[[str, dict], object], bodies: Sequence[tuple[str, dict]]) -> None:
    """Store each facility through the registry's API (``put(path, body)`` as the demo's administrator)."""
    for fid, body in bodies:
        put(f"/api/facilities/{fid}", body)
