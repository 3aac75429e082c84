"""The discharge summary as a PDF a ward can print: who, when, the diagnosis, the last vitals, NEWS2 history, alarms.

Rendered with fpdf2: pure Python (no system libraries), tables that break
across pages and repeat their headings, and embedded TrueType subsets, so
"SpO₂", "°C" and names in Latin scripts come out as real text that pdftotext
and screen readers read. The font is DejaVu Sans from Debian's
``fonts-dejavu-core``; ``FontMissing`` says so when it is not installed.

DejaVu Sans has no Devanagari: a character the font cannot draw is printed
as "\ufffd" and the PDF says so under the tables, rather than leaving a gap where
a name was; the FHIR resources keep the text exactly.

The bytes depend only on the event: the creation date is the discharge event's
time, so a replayed event renders the identical PDF (and the same hash in the
DocumentReference).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.fonts import FontFace

from records_bridge.fhir import clinical_text, text_fields
from records_bridge.fhir.contract import MappingContext
from records_bridge.fhir.encounter import DISPOSITION
from records_bridge.fhir.patient import abha_number
from wire.outbox_events import PatientDischarged

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"),)
_FONT = "DejaVuSans"
_SEX = {"male": "Male", "female": "Female", "other": "Other", "unknown": "Not recorded"}


class FontMissing(RuntimeError):
    """DejaVu Sans is not installed (Debian: ``apt-get install fonts-dejavu-core``); not a fault of the event."""


def font_files() -> tuple[Path, Path]:
    """Regular and bold DejaVu Sans; ``FontMissing`` when either is absent."""
    for folder in FONT_DIRS:
        regular, bold = folder / f"{_FONT}.ttf", folder / f"{_FONT}-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    raise FontMissing(f"DejaVu Sans not found in {', '.join(map(str, FONT_DIRS))}: apt-get install fonts-dejavu-core")


@lru_cache(maxsize=2)
def _drawable(font: Path) -> frozenset[int]:
    with TTFont(font) as ttf:
        return frozenset(ttf.getBestCmap())


class _Ink:
    """Texts as the font can draw them; remembers whether it had to replace anything."""

    def __init__(self, font: Path) -> None:
        self._drawable = _drawable(font)
        self.replaced = False

    def __call__(self, text: str) -> str:
        out = "".join(ch if ord(ch) in self._drawable or ch.isspace() else "\ufffd" for ch in text)
        self.replaced |= out != text
        return out


class _SummaryPdf(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self._footer_text = footer_text

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(_FONT, size=8)
        self.cell(0, 6, f"{self._footer_text} · page {self.page_no()} of {{nb}}", align="C")


def render(ev: PatientDischarged, ctx: MappingContext, written_at: int) -> bytes:
    """The PDF of ``ev``'s discharge summary, dated ``written_at`` (the outbox event's time)."""
    regular, bold = font_files()
    ink = _Ink(regular)
    p, enc, s = ev.patient, ev.encounter, ev.summary
    name = ink(text_fields.required(p.name, "the patient's name"))
    pdf = _SummaryPdf(ink(f"Discharge summary of {name}, MRN {p.mrn}"))
    pdf.set_creation_date(datetime.fromtimestamp(written_at // 1000, tz=UTC))
    pdf.set_title(f"Discharge summary: {name}")
    pdf.set_author(ctx.facility_name)
    pdf.set_creator("teleicu records bridge")
    pdf.set_lang("en-IN")
    pdf.add_font(_FONT, "", str(regular))
    pdf.add_font(_FONT, "B", str(bold))
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.add_page()

    pdf.set_font(_FONT, "B", 16)
    pdf.cell(0, 9, "Discharge summary", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, size=10)
    facility = ctx.facility_name + (f" (HFR ID {ctx.facility_id})" if ctx.facility_id else "")
    pdf.cell(0, 6, ink(facility), new_x="LMARGIN", new_y="NEXT")

    _heading(pdf, "Patient")
    patient_rows = [("Name", name), ("MRN", ink(p.mrn))]
    if p.abha:
        patient_rows.append(("ABHA number", abha_number(p.abha)))
    patient_rows += [("Sex", _SEX[p.sex]), ("Date of birth", p.birth_date or "Not recorded")]
    _pairs(pdf, patient_rows)

    _heading(pdf, "ICU stay")
    outcome = DISPOSITION[enc.outcome][2] if enc.outcome else "Not recorded"
    _pairs(
        pdf,
        [
            ("Bed", ink(f"{enc.bed}, {enc.ward}")),
            ("Admitted", clinical_text.when(enc.start)),
            ("Discharged", clinical_text.when(enc.end) if enc.end is not None else "Not recorded"),
            ("Outcome", outcome),
            ("Attending", ink(p.attending) or "Not recorded"),
        ],
    )

    _heading(pdf, "Diagnosis")
    pdf.multi_cell(0, 6, ink(p.diagnosis) or "Not recorded", new_x="LMARGIN", new_y="NEXT")

    _heading(pdf, "Last vital signs")
    vitals = [(clinical_text.label(v.param), clinical_text.value_text(v.param, v.value), clinical_text.when(v.t)) for v in s.last_vitals]
    _table(pdf, ("Parameter", "Value", "Time"), vitals, (60, 50, 70), "No valid vital signs recorded.")

    _heading(pdf, "NEWS2 history")
    history = [
        (clinical_text.when(point.t), str(point.total) if point.total is not None else f"Incomplete (partial sum {point.partial})",
         clinical_text.band_text(point.band, point.total is not None))
        for point in s.news2
    ]  # fmt: skip
    _table(pdf, ("Time", "NEWS2", "Clinical risk"), history, (48, 62, 70), "No NEWS2 score during the stay.")

    _heading(pdf, "Alarms during the stay")
    alarms = [
        (clinical_text.when(a.raised), ink(clinical_text.alarm_text(a.kind)), a.priority.capitalize(), ink(a.acknowledged_by or "—"),
         clinical_text.when(a.resolved) if a.resolved is not None else "—")
        for a in s.alarms
    ]  # fmt: skip
    _table(pdf, ("Raised", "Alarm", "Priority", "Acknowledged by", "Resolved"), alarms, (44, 32, 20, 40, 44), "No physiological alarms.")

    pdf.ln(3)
    pdf.cell(0, 6, f"Values charted by nurses during the stay: {s.charted}", new_x="LMARGIN", new_y="NEXT")
    if ink.replaced:
        pdf.ln(2)
        note = "Characters this PDF's font cannot print are shown as \ufffd; the electronic record holds the text as written."
        pdf.multi_cell(0, 6, note,
                       new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    return bytes(pdf.output())


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(3)
    pdf.set_font(_FONT, "B", 12)
    pdf.cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, size=10)


def _pairs(pdf: FPDF, rows: Sequence[tuple[str, str]]) -> None:
    for key, value in rows:
        pdf.set_font(_FONT, "B", 10)
        pdf.cell(40, 6, key)
        pdf.set_font(_FONT, size=10)
        pdf.multi_cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")


def _table(pdf: FPDF, headings: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int], empty: str) -> None:
    if not rows:
        pdf.cell(0, 6, empty, new_x="LMARGIN", new_y="NEXT")
        return
    with pdf.table(col_widths=tuple(widths), width=sum(widths), align="LEFT", text_align="LEFT", line_height=5.5,
                   headings_style=FontFace(emphasis="BOLD"), padding=1) as table:  # fmt: skip
        for cells in (headings, *rows):
            row = table.row()
            for cell in cells:
                row.cell(cell)
