"""The demo's hospitals: one per ward however many wards, each one the registry's own checks accept."""

from __future__ import annotations

import pytest

from records_bridge.services.facility import fields
from teleicu.demo_facilities import WITHOUT_TELE_ICU, demo_registry


@pytest.mark.parametrize("wards", [1, 2, 20, 40])
def test_every_ward_gets_its_own_valid_hospital(wards: int) -> None:
    mapping, bodies = demo_registry({f"W{i:02d}": 25 for i in range(wards)})
    assert len(mapping) == wards and len(set(mapping.values())) == wards
    assert len(bodies) == wards + WITHOUT_TELE_ICU and len({fid for fid, _ in bodies}) == len(bodies)
    places = {(b["lat"], b["lon"]) for _, b in bodies}
    assert len(places) == len(bodies)  # no two markers on one spot
    for fid, body in bodies:
        checked = fields.facility(body)
        assert checked["capacity"]["icu"]["staffed"] <= checked["capacity"]["icu"]["licensed"], fid
