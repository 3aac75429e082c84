"""The discharge summary PDF, read back with poppler's pdftotext and drawn with pdftoppm (Debian: poppler-utils).

The first page's PNG is kept under pytest's tmp dir as an artefact to look at;
the test prints its path (``pytest -s`` shows it).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fhir_stay import CTX, END, HOUR, MINUTE, PATIENT, SUMMARY, discharged

from records_bridge.fhir import writes_for
from records_bridge.fhir.clinical_text import when
from records_bridge.fhir.ids import encounter_id, patient_id
from wire.outbox_events import MAX_EVENT_BYTES, Event


def poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is missing: install Debian's poppler-utils (apt-get install -y poppler-utils)")
    return path


def summary_pdf(ev: Event) -> tuple[bytes, dict[str, Any]]:
    docref = writes_for(ev, CTX)[3].resource
    attachment = docref["content"][0]["attachment"]
    return base64.b64decode(attachment["data"]), docref


def pdf_text(pdf: bytes, folder: Path) -> str:
    path = folder / "summary.pdf"
    path.write_bytes(pdf)
    out = subprocess.run([poppler("pdftotext"), "-layout", str(path), "-"], capture_output=True, check=True, timeout=60)
    return " ".join(out.stdout.decode("utf-8").split())  # one space between words, whatever the layout


def test_the_pdf_reads_back_as_text(tmp_path: Path) -> None:
    pdf, _ = summary_pdf(discharged())
    text = pdf_text(pdf, tmp_path)
    assert "Discharge summary" in text and "SMS Hospital, Jaipur (HFR ID IN0810012345)" in text
    assert "Sita Devi Meena" in text and "SMS-2024-004217" in text and "91-2345-6789-0123" in text
    assert f"Admitted {when(HOUR)}" in text and f"Discharged {when(END)}" in text
    assert "01 May 2024 15:30 IST" in text and "04 May 2024 15:30 IST" in text  # IST, as the ward reads it
    assert "Community-acquired pneumonia with septic shock" in text and "Dr. Rakesh Sharma" in text
    for point in SUMMARY["news2"]:
        total = str(point["total"]) if point["total"] is not None else f"Incomplete (partial sum {point['partial']})"
        assert f"{when(point['t'])} {total}" in text
    assert "Low–medium" not in text and "High" in text and "Medium" in text and "Low" in text
    assert "84 beats/min" in text and "16 breaths/min" in text and "37.1 °C" in text and "SpO₂ 97%" in text
    assert "SpO₂ low High Nurse Meena Kumari" in text and "Values charted by nurses during the stay: 42" in text
    assert "page 1 of 1" in text


def test_the_first_page_renders_to_a_png(tmp_path: Path) -> None:
    pdf, _ = summary_pdf(discharged())
    source = tmp_path / "summary.pdf"
    source.write_bytes(pdf)
    subprocess.run([poppler("pdftoppm"), "-png", "-r", "100", "-f", "1", "-l", "1", "-singlefile", str(source), str(tmp_path / "page1")],
                   check=True, timeout=60)  # fmt: skip
    png = tmp_path / "page1.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000  # a page with text on it, not a blank
    print(f"\nfirst page of the discharge summary: {png}")


def test_the_document_reference_attaches_the_pdf_whole() -> None:
    pdf, docref = summary_pdf(discharged())
    attachment = docref["content"][0]["attachment"]
    assert pdf.startswith(b"%PDF-") and attachment["contentType"] == "application/pdf"
    assert attachment["size"] == len(pdf)
    assert attachment["hash"] == base64.b64encode(hashlib.sha1(pdf).digest()).decode()
    assert docref["subject"]["reference"] == f"Patient/{patient_id(PATIENT['patient_id'])}"
    assert docref["context"]["encounter"] == [{"reference": f"Encounter/{encounter_id(discharged().data.encounter.encounter_id)}"}]
    assert docref["type"]["coding"][0]["code"] == "373942005" and docref["status"] == "current"


def test_a_name_the_font_cannot_draw_is_marked_not_dropped(tmp_path: Path) -> None:
    ev = discharged(patient=PATIENT | {"name": "सीता देवी मीणा"})
    pdf, _ = summary_pdf(ev)
    text = pdf_text(pdf, tmp_path)
    assert "\ufffd" in text and "cannot print are shown as \ufffd" in text
    patient = writes_for(ev, CTX)[1].resource
    assert patient["name"] == [{"text": "सीता देवी मीणा"}]  # the record keeps the name as written


def test_a_long_stay_runs_over_pages_with_every_row(tmp_path: Path) -> None:
    points = [
        {"t": HOUR + i * 10 * MINUTE, "total": i % 12, "band": "medium" if i % 12 >= 5 else "low", "partial": i % 12} for i in range(500)
    ]
    alarms = [{"alarm_id": f"a{i}", "kind": "limit:hr_high", "priority": "medium", "raised": HOUR + i * MINUTE} for i in range(200)]
    ev = discharged(summary=SUMMARY | {"news2": points, "alarms": alarms})
    assert len(ev.model_dump_json()) < MAX_EVENT_BYTES  # the hub's bound holds for the largest summary
    pdf, _ = summary_pdf(ev)
    text = pdf_text(pdf, tmp_path)
    assert all(f"{when(p['t'])} {p['total']}" in text for p in points)
    assert text.count("Heart rate high") == 200
    assert "page 1 of " in text and "page 1 of 1 " not in text
    bundle = writes_for(ev, CTX)[-1].resource
    assert sum(e["resource"]["resourceType"] == "Flag" for e in bundle["entry"]) == 200


def test_a_replayed_discharge_renders_the_same_bytes() -> None:
    assert summary_pdf(discharged())[0] == summary_pdf(discharged())[0]
    later = discharged()
    later = later.model_copy(update={"at": later.at + 60_000})
    assert summary_pdf(later)[0] != summary_pdf(discharged())[0]  # the date is the event's, not a constant


def test_without_its_font_the_pdf_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from records_bridge.fhir import discharge_pdf

    monkeypatch.setattr(discharge_pdf, "FONT_DIRS", (tmp_path,))  # a machine without fonts-dejavu-core
    with pytest.raises(discharge_pdf.FontMissing, match="fonts-dejavu-core"):
        writes_for(discharged(), CTX)
