"""Human-readable narrative (``text``) for resources and document sections: escaped XHTML in FHIR's namespace."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

_XHTML = "http://www.w3.org/1999/xhtml"


def narrative(*paragraphs: str, table: tuple[Sequence[str], Sequence[Sequence[str]]] | None = None) -> dict[str, Any]:
    """A generated narrative of paragraphs and, optionally, one table of (headers, rows)."""
    parts = [f"<p>{escape(p)}</p>" for p in paragraphs]
    if table is not None:
        headers, rows = table
        head = "".join(f"<th>{escape(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return {"status": "generated", "div": f'<div xmlns="{_XHTML}">{"".join(parts)}</div>'}
