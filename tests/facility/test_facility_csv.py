"""A district's CSV file: every row checked, all or nothing, each error naming its line and field; the command
``teleicu facility import-csv`` on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from facility_support import SYNTHETIC
from support import teleicu

from records_bridge.services.db import make_engine
from records_bridge.services.facility import csv_import
from records_bridge.services.facility.csv_import import CsvRefused
from records_bridge.services.facility.store import Store

HEADER = ["facility_id", "name", "type", "ownership", "state", "state_lgd", "district", "district_lgd", "subdistrict", "subdistrict_lgd",
          "address", "pincode", "lat", "lon", "specialities", "services", "status", "phone", "email", "icu_licensed", "icu_staffed",
          "ventilator_licensed", "ventilator_staffed"]  # fmt: skip


def district_file(rows: list[dict[str, str]] | None = None) -> bytes:
    """The synthetic set as a CSV file, with ``rows`` changed (by index) where given."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(HEADER)
    for i, (fid, name, lat, lon, d, lgd, t, s) in enumerate(SYNTHETIC):
        row = {"facility_id": fid, "name": name, "type": t, "ownership": "government", "state": "Rajasthan", "state_lgd": "8",
               "district": d, "district_lgd": str(lgd), "subdistrict": "", "subdistrict_lgd": "", "address": "Main road, " + d,
               "pincode": "302004", "lat": str(lat), "lon": str(lon), "specialities": "critical_care; general_medicine",
               "services": ";".join(s), "status": "operational", "phone": "0141-2560291", "email": "", "icu_licensed": "12",
               "icu_staffed": "10", "ventilator_licensed": "", "ventilator_staffed": ""}  # fmt: skip
        row |= (rows or {}).get(i, {}) if isinstance(rows, dict) else {}
        w.writerow([row[h] for h in HEADER])
    return out.getvalue().encode()


def test_a_good_district_file() -> None:
    rows = csv_import.parse(b"\xef\xbb\xbf" + district_file())  # Excel's byte-order mark is fine
    assert [fid for fid, _ in rows] == [s[0] for s in SYNTHETIC]
    first = rows[0][1]
    assert first["services"] == ["ct", "icu", "tele_icu"] and first["specialities"] == ["critical_care", "general_medicine"]
    assert first["capacity"] == {"icu": {"licensed": 12, "staffed": 10}} and first["lat"] == 26.9


def errors_of(data: bytes) -> list[dict]:
    with pytest.raises(CsvRefused) as info:
        csv_import.parse(data)
    return info.value.errors


def test_each_bad_row_is_named_by_line_and_field() -> None:
    data = district_file({2: {"pincode": "02004"}, 4: {"lat": "75.8", "lon": "27.4"}, 5: {"icu_staffed": "13"}, 6: {"district_lgd": "1130"}})  # type: ignore[arg-type]
    errs = errors_of(data)
    assert [(e["line"], e["field"]) for e in errs] == [(4, "pincode"), (6, "lat"), (7, "icu_staffed"), (8, "district_lgd")]
    assert "more than the 12 licensed" in errs[2]["detail"]


def test_file_level_errors() -> None:
    assert errors_of(b"")[0]["detail"].startswith("the file is empty")
    assert errors_of(b"facility_id,name,beds\n")[0] == {"line": 1, "field": "beds", "detail": errors_of(b"facility_id,name,beds\n")[0]["detail"]}
    assert errors_of(district_file().replace(b",pincode,", b",pin,"))[0]["field"] == "pin"
    assert errors_of(b"\xff\xfe" + district_file())[0]["detail"].startswith("not UTF-8")
    assert "larger than" in errors_of(b"x" * (csv_import.MAX_BYTES + 1))[0]["detail"]
    dup = district_file().decode().splitlines()
    errs = errors_of(("\n".join([*dup, dup[1]]) + "\n").encode())
    assert errs[0]["line"] == len(dup) + 1 and errs[0]["field"] == "facility_id" and "line 2" in errs[0]["detail"]
    assert errors_of(b",".join(h.encode() for h in HEADER) + b"\n")[0]["detail"] == "the file has a header but no facilities"
    short = district_file().decode().splitlines()
    short[3] = short[3].rsplit(",", 1)[0]
    assert errors_of(("\n".join(short) + "\n").encode())[0]["line"] == 4


def test_the_command_imports_all_or_nothing(facility_db: str, tmp_path: Path) -> None:
    good, bad = tmp_path / "jaipur.csv", tmp_path / "jaipur-bad.csv"
    good.write_bytes(district_file())
    bad.write_bytes(district_file({1: {"name": "Renamed"}, 3: {"pincode": "1234"}}))  # type: ignore[arg-type]

    r = teleicu("facility", "import-csv", str(bad), "--db", facility_db)
    assert r.returncode == 1 and "nothing imported" in r.stderr and "line 5, pincode" in r.stderr, r.stderr
    r = teleicu("facility", "import-csv", str(good), "--db", facility_db, "--by", "dpm-jaipur")
    assert r.returncode == 0 and "imported 7 facilities" in r.stderr and "7 new" in r.stderr, r.stderr
    r = teleicu("facility", "import-csv", str(bad), "--db", facility_db)  # the good row 1 of this file is not stored either
    assert r.returncode == 1

    engine = make_engine(facility_db)
    try:
        store = Store(engine, lambda: 0)
        row = store.get("IN0810000002")
        assert row["name"] == "North 0.1 CHC" and row["updated_by"] == "dpm-jaipur"
        assert row["capacity"]["icu"]["updated_by"] == "dpm-jaipur"
        assert sum(d["facilities"] for d in store.districts()) == 7
    finally:
        engine.dispose()
    r = teleicu("facility", "import-csv", str(good), "--db", facility_db)
    assert r.returncode == 0 and "7 updated" in r.stderr, r.stderr
