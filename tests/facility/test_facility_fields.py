"""The registry's field checks: HFR id, LGD codes, pincode, coordinates within India, staffed vs licensed beds, and an
occupancy report that adds up."""

from __future__ import annotations

import pytest
from facility_support import T0, facility_body, occupancy_body

from records_bridge.services.facility import fields
from records_bridge.services.facility.fields import FieldError


def refused(field: str, fn, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(FieldError) as info:
        fn(*args)
    assert info.value.field == field, info.value
    return info.value.detail


def test_a_good_facility_is_normalised() -> None:
    body = facility_body("SMS Hospital") | {"state_lgd": "08", "pincode": 302004, "lat": "26.9043", "services": ["tele_icu", "icu", "icu"]}
    out = fields.facility(body)
    assert out["state_lgd"] == 8 and out["pincode"] == "302004" and out["lat"] == 26.9043
    assert out["services"] == ["icu", "tele_icu"]
    assert out["capacity"]["icu"] == {"licensed": 20, "staffed": 12}
    assert fields.phone("0141 256 0291") == "01412560291"


@pytest.mark.parametrize("value", ["IN081000012", "IN08100001234", "in0810000123", "IX0810000123", "IN08100001a3", " IN0810000123", 810000123])
def test_hfr_ids(value) -> None:  # type: ignore[no-untyped-def]
    refused("facility_id", fields.facility_id, value)
    assert fields.facility_id("IN0810000123") == "IN0810000123"


@pytest.mark.parametrize(("level", "good", "bad"), [
    ("state", ["8", 8, "08", "38"], ["0", "00", "123", "8a", "-8", "", 8.5, True, "८"]),
    ("district", ["110", "1", 999], ["1000", "0", "11O", "abc"]),
    ("subdistrict", ["564", "12345"], ["123456", "0", "5 64"]),
])  # fmt: skip
def test_lgd_codes(level, good, bad) -> None:  # type: ignore[no-untyped-def]
    for v in good:
        assert fields.lgd_code(level, v) == int(str(v))
    for v in bad:
        if v == "":
            refused(f"{level}_lgd", fields.lgd_code, level, v)
        else:
            assert "LGD" in refused(f"{level}_lgd", fields.lgd_code, level, v)


@pytest.mark.parametrize("value", ["002004", "30200", "3020041", "30200a", "", None, 302004.0])
def test_pincodes(value) -> None:  # type: ignore[no-untyped-def]
    refused("pincode", fields.pincode, value)
    assert fields.pincode("110001") == "110001"


def test_coordinates_must_lie_in_india() -> None:
    assert fields.coordinate("lat", 6.5) == 6.5 and fields.coordinate("lat", 37.5) == 37.5
    assert fields.coordinate("lon", 68.0) == 68.0 and fields.coordinate("lon", 97.5) == 97.5
    assert "swapped" in refused("lat", fields.coordinate, "lat", 75.8)  # latitude and longitude swapped
    refused("lon", fields.coordinate, "lon", 26.9)
    refused("lat", fields.coordinate, "lat", -26.9)
    refused("lat", fields.coordinate, "lat", 6.49)
    refused("lon", fields.coordinate, "lon", 97.51)
    for bad in ("nan", "inf", "", "26,9", None, True):
        refused("lat", fields.coordinate, "lat", bad)
    body = facility_body("Swapped") | {"lat": 75.8, "lon": 26.9}
    refused("lat", fields.facility, body)


def test_staffed_beds_never_exceed_licensed() -> None:
    assert fields.capacity({"icu": {"licensed": 10, "staffed": 10}}) == {"icu": {"licensed": 10, "staffed": 10}}
    assert "more than the 10 licensed" in refused("capacity.icu.staffed", fields.capacity, {"icu": {"licensed": 10, "staffed": 11}})
    refused("capacity.icu.licensed", fields.capacity, {"icu": {"licensed": -1, "staffed": 0}})
    refused("capacity.icu", fields.capacity, {"icu": {"licensed": 1}})
    refused("capacity.burns", fields.capacity, {"burns": {"licensed": 1, "staffed": 1}})
    refused("capacity.hdu.staffed", fields.capacity, {"hdu": {"licensed": 2, "staffed": 1.5}})


def test_vocabularies_and_required_fields() -> None:
    refused("type", fields.facility, facility_body("X") | {"type": "hospital"})
    refused("ownership", fields.facility, facility_body("X") | {"ownership": "state"})
    refused("status", fields.facility, facility_body("X") | {"status": "open"})
    refused("services", fields.facility, facility_body("X") | {"services": ["icu", "helipad"]})
    refused("specialities", fields.facility, facility_body("X") | {"specialities": ["x"] * 31})
    refused("name", fields.facility, facility_body("X") | {"name": "   "})
    refused("name", fields.facility, facility_body("X") | {"name": "a" * 201})
    refused("district_lgd", fields.facility, {k: v for k, v in facility_body("X").items() if k != "district_lgd"})
    refused("beds", fields.facility, facility_body("X") | {"beds": 3})
    refused("subdistrict_lgd", fields.facility, facility_body("X") | {"subdistrict_lgd": None})
    refused("email", fields.facility, facility_body("X") | {"email": "icu at example.org"})
    refused("phone", fields.facility, facility_body("X") | {"phone": "12345"})


def test_an_occupancy_report_adds_up() -> None:
    ok = fields.occupancy(occupancy_body(T0), T0, 120_000)
    assert ok["free"] == 3 and ok["occupied"] == 7 and ok["as_of"] == T0
    assert "must equal" in refused("free", fields.occupancy, occupancy_body(T0) | {"free": 4}, T0, 120_000)
    refused("occupied", fields.occupancy, occupancy_body(T0) | {"occupied": -1, "free": 11}, T0, 120_000)
    refused("news2_high", fields.occupancy, occupancy_body(T0) | {"news2_high": 11}, T0, 120_000)
    refused("as_of", fields.occupancy, occupancy_body(T0 + 121_000), T0, 120_000)  # a census from the future: a wrong clock
    refused("as_of", fields.occupancy, occupancy_body(T0) | {"as_of": "2024-05-01T08:00Z"}, T0, 120_000)
    refused("source", fields.occupancy, {k: v for k, v in occupancy_body(T0).items() if k != "source"}, T0, 120_000)
    refused("beds", fields.occupancy, occupancy_body(T0) | {"beds": 1}, T0, 120_000)
