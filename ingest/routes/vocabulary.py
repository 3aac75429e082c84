"""The parameter vocabulary as the pages show it (``GET /api/vocabulary``): labels, units as written, what may be charted.

One source for every page: ``wire.vocabulary`` (and the charting rules of
``ingest.patients.charting``), so a page never keeps its own table of units.
Public, like the API's own description: it holds no patient data.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ingest.patients.charting import CHARTABLE, WORDS
from wire.vocabulary import LEADS, PARAMETERS

router = APIRouter(prefix="/api", tags=["console"])


@router.get("/vocabulary")
async def vocabulary() -> dict[str, Any]:
    return {
        "parameters": [{"key": p.key, "label": p.label, "meaning": p.meaning, "ucum": p.ucum, "written": p.written,
                        "chartable": p.key in CHARTABLE, "words": WORDS.get(p.key, {})} for p in PARAMETERS],  # fmt: skip
        "leads": [{"key": lead.key, "meaning": lead.meaning, "ucum": lead.unit} for lead in LEADS],
    }
