"""The KPIs as officials read them: the window in the programme's time zone, each KPI's value, numerator, denominator,
unit and written definition, per facility and for a state, as JSON and as CSV.

The arithmetic after the queries (``queries``) is here and only here: ratios,
per-day and per-bed-day rates, and the percentiles of time to acknowledge
(linear interpolation between the two nearest ranks: Hyndman and Fan's
method 7, as PostgreSQL's ``percentile_cont`` and NumPy's default compute it).
A KPI whose denominator is zero has no value (``null``), never 0.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from records_bridge.services.facility.kpi.facilities import FacilityRef
from sqlalchemy import Connection

from records_bridge.services.facility.kpi import queries
from records_bridge.services.facility.kpi.queries import DAY_MS, HOUR_MS, Facts
from records_bridge.services.facility.kpi.settings import KpiSettings

MIN_MS = 60_000


class WindowError(ValueError):
    """The dates asked for make no window (reversed, too long, not begun)."""


@dataclass(frozen=True, slots=True)
class Window:
    first: date  # the first day, in the programme's time zone
    last: date  # the last day (inclusive)
    tz: str
    start_ms: int  # midnight starting ``first``
    day_end_ms: int  # midnight ending ``last``
    end_ms: int  # the figures' end: ``day_end_ms`` or now, whichever is first

    @property
    def hours(self) -> float:
        return (self.end_ms - self.start_ms) / HOUR_MS

    @property
    def days(self) -> float:
        return (self.end_ms - self.start_ms) / DAY_MS

    def to_json(self) -> dict[str, Any]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat(), "tz": self.tz, "start_ms": self.start_ms,
                "end_ms": self.end_ms, "complete": self.end_ms == self.day_end_ms, "hours": self.hours, "days": self.days}  # fmt: skip


def window(first: date | None, last: date | None, now_ms: int, settings: KpiSettings) -> Window:
    """The window from local midnight of ``first`` to local midnight after ``last`` (default: the last 7 days to today)."""
    tz = ZoneInfo(settings.tz)
    today = datetime.fromtimestamp(now_ms / 1000, tz).date()
    last = last or today
    first = first or last - timedelta(days=6)
    if first > last:
        raise WindowError(f"from ({first}) is after to ({last})")
    if (last - first).days + 1 > settings.max_days:
        raise WindowError(f"the window is longer than {settings.max_days} days")
    start = int(datetime.combine(first, time(0), tz).timestamp() * 1000)
    day_end = int(datetime.combine(last + timedelta(days=1), time(0), tz).timestamp() * 1000)
    if start >= now_ms:
        raise WindowError(f"the window begins on {first}, which has not begun yet in {settings.tz}")
    return Window(first, last, settings.tz, start, day_end, min(day_end, now_ms))


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """The ``p`` quantile (0..1) of sorted values by linear interpolation between the nearest ranks (method 7)."""
    if not sorted_values:
        return None
    h = (len(sorted_values) - 1) * p
    lo = math.floor(h)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (h - lo) * (sorted_values[hi] - sorted_values[lo])


def _ratio(num: float, den: float, scale: float = 1.0) -> float | None:
    return None if den <= 0 else num / den * scale


DEFINITIONS: dict[str, tuple[str, str, str]] = {
    # key: (label, unit, definition)
    "occupancy": ("Occupancy", "%",
                  "Occupied bed-hours ÷ staffed bed-hours in the period. An occupied bed-hour is an hour of an ICU stay "
                  "(admission to discharge, cut at the period's edges; a stay still open counts until now). Staffed bed-hours "
                  "are the registry's staffed ICU beds × the period's hours; today's staffed count is used for the whole period."),
    "admissions_per_day": ("Admissions per day", "per day",
                           "ICU admissions that began in the period ÷ the period's days. Admissions entered in error are not counted."),
    "discharges_per_day": ("Discharges per day", "per day",
                           "ICU stays that ended in the period (any outcome, including death and transfer out) ÷ the period's days."),
    "transfers_per_day": ("Bed transfers per day", "per day", "Moves of an admitted patient from one bed to another in the period ÷ the period's days."),
    "length_of_stay": ("Average length of stay", "days",
                       "Sum of the lengths of the stays that ended in the period (from admission, even before the period) ÷ "
                       "the number of those stays."),
    "readmission_48h": ("Readmission within 48 h", "%",
                        "Live discharges in the period whose patient (same MRN, ABHA number or hub patient record, at the same hub) "
                        "was admitted again within 48 hours ÷ all live discharges in the period (outcome other than died)."),
    "mortality": ("Crude ICU mortality", "%", "ICU stays that ended in the period with the outcome died ÷ all stays that ended in the period."),
    "alarms_physiological": ("Physiological alarms per monitored bed-day", "per bed-day",
                             "Physiological alarms raised in the period ÷ monitored bed-days (occupied bed-hours ÷ 24)."),
    "alarms_technical": ("Technical alarms per monitored bed-day", "per bed-day",
                         "Technical alarms (equipment and data problems) raised in the period ÷ monitored bed-days (occupied bed-hours ÷ 24)."),
    "ack_median": ("Time to acknowledge, median", "min",
                   "Median of (first acknowledgement − raised) over the alarms raised in the period that were acknowledged; "
                   "numerator: alarms acknowledged, denominator: alarms raised. Percentiles interpolate linearly between the "
                   "two nearest ranks."),
    "ack_p90": ("Time to acknowledge, 90th percentile", "min",
                "90th percentile of (first acknowledgement − raised) over the alarms raised in the period that were acknowledged "
                "(linear interpolation between the two nearest ranks)."),
    "news2_urgent": ("NEWS2 ≥5 answered in time", "%",
                     "NEWS2 ≥5 episodes (from entering band medium or high until a complete score below 5) that began in the "
                     "period in which a clinician acknowledged a NEWS2 alarm within {urgent} minutes ÷ all such episodes. "
                     "An episode still inside its {urgent} minutes and not yet acknowledged is not counted yet."),
    "news2_emergency": ("NEWS2 ≥7 answered in time", "%",
                        "NEWS2 ≥7 episodes (from entering band high until a complete score below 7) that began in the period in "
                        "which a clinician acknowledged a NEWS2 alarm within {emergency} minutes ÷ all such episodes."),
    "data_completeness": ("Data completeness", "%",
                          "Samples received ÷ samples expected for {params} over the occupied bed-hours of the period, "
                          "expecting {rate} samples per parameter per bed-hour. Each hour's count is capped at the expected "
                          "rate; an occupied hour with no data counts as none received."),
    "monitor_gaps": ("Monitor gaps", "count",
                     "Technical alarms raised in the period meaning a bed's data stopped ({gap_kinds}); denominator: monitored bed-days."),
}


def definitions(settings: KpiSettings) -> dict[str, dict[str, str]]:
    """Each KPI's label, unit and definition, with the configured times and rates written in."""
    fill = {"urgent": settings.news2_urgent_min, "emergency": settings.news2_emergency_min, "rate": settings.expected_per_hour,
            "params": ", ".join(p.upper() if p != "spo2" else "SpO2" for p in settings.core_params),
            "gap_kinds": ", ".join(settings.gap_kinds)}  # fmt: skip
    return {k: {"label": label, "unit": unit, "definition": text.format(**fill)} for k, (label, unit, text) in DEFINITIONS.items()}


def kpis(f: Facts, staffed_beds: int | None, w: Window, settings: KpiSettings, occupancy_ms: int | None = None) -> list[dict[str, Any]]:
    """Every KPI of one facility (or of a state: ``f`` summed, ``staffed_beds`` and ``occupancy_ms`` from ``state_total``)."""
    occupied_h = f.occupied_ms / HOUR_MS
    occupancy_h = (f.occupied_ms if occupancy_ms is None else occupancy_ms) / HOUR_MS
    bed_days = occupied_h / 24
    staffed_h = staffed_beds * w.hours if staffed_beds is not None else 0.0
    expected = settings.expected_per_hour * len(settings.core_params) * occupied_h
    received = f.sample_ms / HOUR_MS
    ack_min = [ms / MIN_MS for ms in f.ack_ms]
    rows: dict[str, tuple[float | None, float | None, float | None]] = {
        "occupancy": (_ratio(occupancy_h, staffed_h, 100), occupancy_h, staffed_h if staffed_beds is not None else None),
        "admissions_per_day": (_ratio(f.admissions, w.days), f.admissions, w.days),
        "discharges_per_day": (_ratio(f.discharges, w.days), f.discharges, w.days),
        "transfers_per_day": (_ratio(f.transfers, w.days), f.transfers, w.days),
        "length_of_stay": (_ratio(f.stay_ms / DAY_MS, f.discharges), f.stay_ms / DAY_MS, f.discharges),
        "readmission_48h": (_ratio(f.readmitted, f.live, 100), f.readmitted, f.live),
        "mortality": (_ratio(f.died, f.discharges, 100), f.died, f.discharges),
        "alarms_physiological": (_ratio(f.physiological, bed_days), f.physiological, bed_days),
        "alarms_technical": (_ratio(f.technical, bed_days), f.technical, bed_days),
        "ack_median": (percentile(ack_min, 0.5), len(ack_min), f.raised),
        "ack_p90": (percentile(ack_min, 0.9), len(ack_min), f.raised),
        "news2_urgent": (_ratio(f.urgent_answered, f.urgent_episodes, 100), f.urgent_answered, f.urgent_episodes),
        "news2_emergency": (_ratio(f.emergency_answered, f.emergency_episodes, 100), f.emergency_answered, f.emergency_episodes),
        "data_completeness": (None if expected <= 0 else min(100.0, received / expected * 100), received, expected),
        "monitor_gaps": (f.gaps, f.gaps, bed_days),
    }
    defs = definitions(settings)
    return [{"key": k, **defs[k], "value": v, "numerator": n, "denominator": d} for k, (v, n, d) in rows.items()]


def facility_json(ref: FacilityRef) -> dict[str, Any]:
    return {"facility_id": ref.facility_id, "name": ref.name, "state": ref.state, "district": ref.district,
            "staffed_icu_beds": ref.staffed_icu_beds}  # fmt: skip


def state_total(facts: dict[str, Facts], refs: Sequence[FacilityRef]) -> tuple[Facts, int | None, int]:
    """A state's facts: its facilities' summed (times to acknowledge pooled), the staffed beds of the facilities whose
    count is known (None: none known) and their occupied ms (occupancy's numerator counts only those facilities)."""
    total, occupied_known, staffed = Facts(), 0, None
    for ref in refs:
        total.add(facts[ref.facility_id])
        if ref.staffed_icu_beds is not None:
            staffed = (staffed or 0) + ref.staffed_icu_beds
            occupied_known += facts[ref.facility_id].occupied_ms
    total.ack_ms.sort()
    return total, staffed, occupied_known


def facility_report(conn: Connection, ref: FacilityRef, w: Window, asof: int, settings: KpiSettings) -> dict[str, Any]:
    """One facility's KPIs over ``w`` (the API's answer for ``?facility=``)."""
    facts = queries.run(conn, [ref.facility_id], w.start_ms, w.end_ms, asof, settings)
    return {"scope": "facility", "as_of": asof, "window": w.to_json(), "facility": facility_json(ref),
            "kpis": kpis(facts[ref.facility_id], ref.staffed_icu_beds, w, settings)}  # fmt: skip


def state_report(conn: Connection, state: str, refs: Sequence[FacilityRef], w: Window, asof: int, settings: KpiSettings) -> dict[str, Any]:
    """A state's KPIs over ``w``: each of its facilities (``refs``), and the state's total (the API's answer for ``?state=``)."""
    facts = queries.run(conn, [r.facility_id for r in refs], w.start_ms, w.end_ms, asof, settings)
    total, staffed, occupancy_ms = state_total(facts, refs)
    return {"scope": "state", "as_of": asof, "window": w.to_json(), "state": state,
            "facilities": [{"facility": facility_json(r), "kpis": kpis(facts[r.facility_id], r.staffed_icu_beds, w, settings)} for r in refs],
            "total": {"facilities": len(refs), "staffed_icu_beds": staffed, "kpis": kpis(total, staffed, w, settings, occupancy_ms)}}  # fmt: skip


CSV_COLUMNS = ("state", "district", "facility_id", "facility", "from", "to", "tz", "kpi", "label", "value", "unit", "numerator",
               "denominator", "definition")  # fmt: skip


def _num(x: float | None) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:.6g}" if abs(x) >= 1e6 else f"{x:.6f}".rstrip("0").rstrip(".")


def to_csv(blocks: Sequence[tuple[FacilityRef | None, str, list[dict[str, Any]]]], w: Window) -> str:
    """``blocks``: (facility, or None for a state total; the state; its KPIs). One row per facility per KPI."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for ref, state, rows in blocks:
        for r in rows:
            writer.writerow([_safe(state), _safe(ref.district if ref else ""), _safe(ref.facility_id if ref else "(state total)"),
                             _safe(ref.name if ref else f"{state}: all facilities"), w.first.isoformat(), w.last.isoformat(), w.tz,
                             r["key"], r["label"], _num(r["value"]), r["unit"], _num(r["numerator"]), _num(r["denominator"]),
                             r["definition"]])  # fmt: skip
    return out.getvalue()


def _safe(cell: str) -> str:
    """A text cell a spreadsheet will not run as a formula (names come from the registry, typed by people)."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell
