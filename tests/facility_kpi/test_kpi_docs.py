"""docs/kpi.md quotes every KPI query as the code runs it, and names every KPI the API answers."""

from __future__ import annotations

from pathlib import Path

from records_bridge.services.facility.kpi import queries, report

DOC = Path(__file__).resolve().parents[2] / "docs" / "kpi.md"


def quoted() -> str:
    """The queries section of docs/kpi.md, made from ``queries.QUERIES``."""
    return "".join(f"### `{name}`\n\n```sql{sql}\n```\n\n" for name, sql in queries.QUERIES.items())


def test_the_doc_quotes_every_query_as_the_code_runs_it() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert quoted().rstrip() in text, "docs/kpi.md's queries differ from queries.QUERIES: paste tests/facility_kpi/test_kpi_docs.quoted() in"


def test_the_doc_names_every_kpi() -> None:
    text = DOC.read_text(encoding="utf-8")
    for label, _unit, _definition in report.DEFINITIONS.values():
        assert label.split(",")[0].split(" (")[0] in text, label
