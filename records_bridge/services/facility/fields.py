"""The registry's checks, sans I/O: a facility's fields, its capacity per bed type and an occupancy report, each
checked field by field and answered as a normalised dict, or a ``FieldError`` naming the field and what is wrong.

The facts they rest on:

- **HFR id**: the ABDM Health Facility Registry's id, ``IN`` and 10 digits (``IN0810000123``).
- **LGD codes** (the Local Government Directory's codes, numeric): a state's is 1-2 digits, a district's 1-3 digits,
  a sub-district's 1-5 digits (today's sub-district codes have up to 4 digits; 5 leaves room); never 0. They are stored as numbers,
  so ``08`` and ``8`` are the same state.
- **Pincode**: 6 digits, the first 1-9 (India Post's first digit is a postal region; none is 0).
- **Coordinates**: decimal degrees (WGS 84) inside India's bounding box, latitude 6.5 to 37.5 N and longitude 68.0 to
  97.5 E. A coarse check: it catches swapped latitude and longitude, a sign lost or a point in the sea far off, not a
  point in a neighbouring country inside the box.
- **Capacity**: per bed type, ``licensed`` (sanctioned) and ``staffed`` (beds with staff to run them) are kept apart
  and staffed can never exceed licensed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from records_bridge.services.facility.vocab import BED_TYPES, FACILITY_TYPES, OWNERSHIP, SERVICES, SPECIALITIES, STATUS

HFR_ID = re.compile(r"IN[0-9]{10}")
PINCODE = re.compile(r"[1-9][0-9]{5}")
EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+")
PHONE = re.compile(r"(\+91)?[0-9]{10,11}")
LAT_RANGE, LON_RANGE = (6.5, 37.5), (68.0, 97.5)
LGD_DIGITS = {"state": 2, "district": 3, "subdistrict": 5}
MAX_TEXT, MAX_ADDRESS, MAX_LIST, MAX_BEDS = 200, 500, 30, 100_000
FACILITY_FIELDS = ("name", "type", "ownership", "state", "state_lgd", "district", "district_lgd", "subdistrict", "subdistrict_lgd",
                   "address", "pincode", "lat", "lon", "specialities", "services", "status", "phone", "email", "capacity")  # fmt: skip
REQUIRED = ("name", "type", "ownership", "state", "state_lgd", "district", "district_lgd", "pincode", "lat", "lon", "status")
OCCUPANCY_FIELDS = ("as_of", "icu_beds", "occupied", "free", "news2_high", "monitors_offline", "source")


class FieldError(ValueError):
    """``field`` is wrong: ``detail`` says how, in words an admin can act on."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field, self.detail = field, detail


def facility_id(value: Any) -> str:
    if not isinstance(value, str) or not HFR_ID.fullmatch(value):
        raise FieldError("facility_id", "an HFR id is IN and 10 digits (IN0810000123)")
    return value


def text(field: str, value: Any, limit: int = MAX_TEXT, *, required: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise FieldError(field, "is required")
        return None
    if not isinstance(value, str):
        raise FieldError(field, "must be text")
    value = " ".join(value.split())
    if len(value) > limit or not value.isprintable():
        raise FieldError(field, f"must be printable text of at most {limit} characters")
    return value


def choice(field: str, value: Any, vocabulary: Mapping[str, str]) -> str:
    if not isinstance(value, str) or value not in vocabulary:
        raise FieldError(field, f"must be one of {', '.join(vocabulary)}")
    return value


def lgd_code(level: str, value: Any, *, required: bool = True) -> int | None:
    field, digits = f"{level}_lgd", LGD_DIGITS[level]
    if value is None or value == "":
        if required:
            raise FieldError(field, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise FieldError(field, f"an LGD {level} code is a number of 1 to {digits} digits")
    s = str(value).strip()
    if not s.isascii() or not s.isdigit() or not 1 <= len(s) <= digits or int(s) == 0:
        raise FieldError(field, f"an LGD {level} code is a number of 1 to {digits} digits, not 0 (got {s[:20]!r})")
    return int(s)


def pincode(value: Any) -> str:
    s = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not PINCODE.fullmatch(s):
        raise FieldError("pincode", "a pincode is 6 digits, the first not 0")
    return s


def coordinate(field: str, value: Any) -> float:
    lo, hi = LAT_RANGE if field == "lat" else LON_RANGE
    try:
        x = float(value) if not isinstance(value, bool) and isinstance(value, (int, float, str)) else math.nan
    except ValueError:
        x = math.nan
    if not math.isfinite(x):
        raise FieldError(field, "must be a number of decimal degrees")
    if not lo <= x <= hi:
        what = "latitude" if field == "lat" else "longitude"
        raise FieldError(field, f"{what} {x} is outside India ({lo} to {hi}); were latitude and longitude swapped?")
    return round(x, 6)


def code_list(field: str, value: Any, vocabulary: Mapping[str, str]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise FieldError(field, f"must be a list of at most {MAX_LIST} codes")
    bad = [str(v)[:40] for v in value if not isinstance(v, str) or v not in vocabulary]
    if bad:
        raise FieldError(field, f"unknown {', '.join(bad[:3])}; known: {', '.join(vocabulary)}")
    return sorted(set(value))


def phone(value: Any) -> str | None:
    if value is None or value == "":
        return None
    s = re.sub(r"[\s-]", "", value) if isinstance(value, str) else ""
    if not PHONE.fullmatch(s):
        raise FieldError("phone", "a phone number is 10 or 11 digits (an STD code and number, or a mobile), +91 optional")
    return s


def email(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 254 or not EMAIL.fullmatch(value.strip()):
        raise FieldError("email", "must be an e-mail address (name@domain)")
    return value.strip()


def count(field: str, value: Any, limit: int = MAX_BEDS) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise FieldError(field, f"must be a whole number from 0 to {limit}")
    return value


def capacity(value: Any, prefix: str = "capacity") -> dict[str, dict[str, int]]:
    """``{"icu": {"licensed": 20, "staffed": 12}, ...}``: any of the bed types; staffed never above licensed."""
    if not isinstance(value, dict):
        raise FieldError(prefix, f"must be an object of bed types ({', '.join(BED_TYPES)})")
    out = {}
    for bed_type, figures in value.items():
        where = f"{prefix}.{bed_type}"
        if bed_type not in BED_TYPES:
            raise FieldError(where, f"unknown bed type; known: {', '.join(BED_TYPES)}")
        if not isinstance(figures, dict) or set(figures) != {"licensed", "staffed"}:
            raise FieldError(where, "must be {\"licensed\": n, \"staffed\": n}")
        licensed, staffed = count(f"{where}.licensed", figures["licensed"]), count(f"{where}.staffed", figures["staffed"])
        if staffed > licensed:
            raise FieldError(f"{where}.staffed", f"{staffed} staffed beds is more than the {licensed} licensed")
        out[bed_type] = {"licensed": licensed, "staffed": staffed}
    return out


def facility(body: Mapping[str, Any]) -> dict[str, Any]:
    """A facility's fields, checked and normalised (its id is checked apart: it is in the URL or the CSV row)."""
    unknown = sorted(set(body) - set(FACILITY_FIELDS))
    if unknown:
        raise FieldError(unknown[0][:40], f"unknown field; known: {', '.join(FACILITY_FIELDS)}")
    for f in REQUIRED:
        if body.get(f) in (None, ""):
            raise FieldError(f, "is required")
    out: dict[str, Any] = {
        "name": text("name", body["name"]), "type": choice("type", body["type"], FACILITY_TYPES),
        "ownership": choice("ownership", body["ownership"], OWNERSHIP),
        "state": text("state", body["state"], 80), "state_lgd": lgd_code("state", body["state_lgd"]),
        "district": text("district", body["district"], 80), "district_lgd": lgd_code("district", body["district_lgd"]),
        "subdistrict": text("subdistrict", body.get("subdistrict"), 80, required=False),
        "subdistrict_lgd": lgd_code("subdistrict", body.get("subdistrict_lgd"), required=False),
        "address": text("address", body.get("address"), MAX_ADDRESS, required=False), "pincode": pincode(body["pincode"]),
        "lat": coordinate("lat", body["lat"]), "lon": coordinate("lon", body["lon"]),
        "specialities": code_list("specialities", body.get("specialities"), SPECIALITIES),
        "services": code_list("services", body.get("services"), SERVICES),
        "status": choice("status", body["status"], STATUS), "phone": phone(body.get("phone")), "email": email(body.get("email")),
    }  # fmt: skip
    if (out["subdistrict"] is None) != (out["subdistrict_lgd"] is None):
        raise FieldError("subdistrict_lgd" if out["subdistrict_lgd"] is None else "subdistrict", "give the sub-district's name and LGD code together")
    out["capacity"] = capacity(body["capacity"]) if body.get("capacity") is not None else {}
    return out


def occupancy(body: Mapping[str, Any], now_ms: int, max_ahead_ms: int) -> dict[str, Any]:
    """One hub's census for a facility's ICU: counts never negative, occupied + free == icu_beds, ``as_of`` (ms since the
    epoch) not more than ``max_ahead_ms`` ahead of ``now_ms`` (clocks drift; a census from the future is a wrong clock)."""
    unknown = sorted(set(body) - set(OCCUPANCY_FIELDS))
    if unknown:
        raise FieldError(unknown[0][:40], f"unknown field; known: {', '.join(OCCUPANCY_FIELDS)}")
    missing = [f for f in OCCUPANCY_FIELDS if f not in body]
    if missing:
        raise FieldError(missing[0], "is required")
    as_of = body["as_of"]
    if isinstance(as_of, bool) or not isinstance(as_of, int) or as_of <= 0:
        raise FieldError("as_of", "must be the census time in milliseconds since the epoch")
    if as_of > now_ms + max_ahead_ms:
        raise FieldError("as_of", f"is {(as_of - now_ms) / 1000:.0f} s ahead of this service's clock: check the hub's clock")
    out = {f: count(f, body[f]) for f in ("icu_beds", "occupied", "free", "news2_high", "monitors_offline")}
    if out["occupied"] + out["free"] != out["icu_beds"]:
        raise FieldError("free", f"occupied ({out['occupied']}) + free ({out['free']}) must equal icu_beds ({out['icu_beds']})")
    for f in ("news2_high", "monitors_offline"):
        if out[f] > out["icu_beds"]:
            raise FieldError(f, f"is more than the {out['icu_beds']} ICU beds")
    out["as_of"], out["source"] = as_of, text("source", body["source"], 64)
    return out
