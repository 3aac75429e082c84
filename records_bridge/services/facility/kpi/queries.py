"""The KPI queries: each KPI is one SQL query over the KPI store (or one query and a stated arithmetic step), grouped
by facility, so a state's page is the same eight queries as one facility's.

Every query takes the window ``[:w0, :w1)`` in ms (``w1`` is the end of the
last day or now, whichever is first: an open encounter is occupied until now,
never into the future) and the facilities (``:facs``). Encounters entered in
error (``admission.cancelled``) count nowhere: not their stay, not their
alarms, scores or samples. Alarms, scores and hourly counts belong to the
facility of their encounter (a join at query time; see ``store``).

The SQL below is the documentation (docs/kpi.md quotes it): read it to know
exactly what a figure counts. It runs unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, text

from records_bridge.services.facility.kpi.settings import KpiSettings

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
READMIT_MS = 48 * HOUR_MS

W0, W1 = "CAST(:w0 AS BIGINT)", "CAST(:w1 AS BIGINT)"
# an encounter's stay clipped to the window; open encounters run to the window's end
CLIPPED_MS = f"(CASE WHEN e.end_ms IS NULL OR e.end_ms > {W1} THEN {W1} ELSE e.end_ms END - CASE WHEN e.start_ms < {W0} THEN {W0} ELSE e.start_ms END)"
OVERLAPS = f"e.start_ms < {W1} AND (e.end_ms IS NULL OR e.end_ms > {W0})"
MINE = "e.facility_id IN :facs AND NOT e.cancelled"
JOIN_E = "JOIN kpi_encounters e ON e.hub = {t}.hub AND e.encounter_id = {t}.encounter_id"

#: occupied bed-ms: each encounter's stay clipped to the window, summed (-> occupancy, monitored bed-days)
OCCUPIED = f"""
SELECT e.facility_id AS facility_id, SUM({CLIPPED_MS}) AS occupied_ms
FROM kpi_encounters e
WHERE {MINE} AND {OVERLAPS}
GROUP BY e.facility_id"""

#: admissions: encounters that started in the window
ADMISSIONS = f"""
SELECT e.facility_id AS facility_id, COUNT(*) AS admissions
FROM kpi_encounters e
WHERE {MINE} AND e.start_ms >= {W0} AND e.start_ms < {W1}
GROUP BY e.facility_id"""

def _again(key: str) -> str:
    """The same patient (by ``key``) admitted again at the same hub within 48 h of ``e``'s end (one EXISTS per key, so
    each uses its index)."""
    return (f"EXISTS (SELECT 1 FROM kpi_encounters r WHERE r.hub = e.hub AND r.{key} = e.{key} AND r.start_ms >= e.end_ms"
            f" AND r.start_ms <= e.end_ms + CAST(:readmit_ms AS BIGINT) AND r.encounter_id <> e.encounter_id AND NOT r.cancelled)")


#: discharges: encounters that ended in the window (wherever they started), their stay, deaths, live discharges, and
#: live discharges whose patient (same hub; same MRN, ABHA number or hub patient id) was admitted again within 48 h
DISCHARGES = f"""
SELECT e.facility_id AS facility_id, COUNT(*) AS discharges, SUM(e.end_ms - e.start_ms) AS stay_ms,
       SUM(CASE WHEN e.outcome = 'died' THEN 1 ELSE 0 END) AS died,
       SUM(CASE WHEN COALESCE(e.outcome, '') <> 'died' THEN 1 ELSE 0 END) AS live,
       SUM(CASE WHEN COALESCE(e.outcome, '') <> 'died' AND ({_again("mrn")} OR {_again("abha")} OR {_again("patient_id")})
           THEN 1 ELSE 0 END) AS readmitted
FROM kpi_encounters e
WHERE {MINE} AND e.end_ms >= {W0} AND e.end_ms < {W1}
GROUP BY e.facility_id"""

#: transfers: bed moves (``patient.transferred``) in the window
TRANSFERS = f"""
SELECT e.facility_id AS facility_id, COUNT(*) AS transfers
FROM kpi_transfers x {JOIN_E.format(t="x")}
WHERE {MINE} AND x.t >= {W0} AND x.t < {W1}
GROUP BY e.facility_id"""

#: alarms raised in the window, physiological and technical, and the technical ones that mean a monitor's data stopped
ALARMS = f"""
SELECT e.facility_id AS facility_id,
       SUM(CASE WHEN a.category = 'physiological' THEN 1 ELSE 0 END) AS physiological,
       SUM(CASE WHEN a.category = 'technical' THEN 1 ELSE 0 END) AS technical,
       SUM(CASE WHEN a.kind IN :gap_kinds THEN 1 ELSE 0 END) AS gaps,
       COUNT(*) AS raised
FROM kpi_alarms a {JOIN_E.format(t="a")}
WHERE {MINE} AND a.raised >= {W0} AND a.raised < {W1}
GROUP BY e.facility_id"""

#: time to acknowledge of every alarm raised in the window and acknowledged (first acknowledgement); sorted afterwards
ACK_TIMES = f"""
SELECT e.facility_id AS facility_id, a.acknowledged - a.raised AS ack_ms
FROM kpi_alarms a {JOIN_E.format(t="a")}
WHERE {MINE} AND a.raised >= {W0} AND a.raised < {W1} AND a.acknowledged IS NOT NULL"""

#: NEWS2 episodes that began in the window: band changes in time order per encounter (incomplete scores, band
#: "unknown", neither begin nor end one); an urgent episode begins on entering medium or high from below, an emergency
#: one on entering high; it counts as answered when a NEWS2 alarm of the encounter was acknowledged from its start to
#: start + the response time, and is left out while still undecided (its time not yet over, no acknowledgement yet)
NEWS2_EPISODES = f"""
WITH s AS (
  SELECT n.hub, n.encounter_id, e.facility_id, n.t, n.band,
         LAG(n.band) OVER (PARTITION BY n.hub, n.encounter_id ORDER BY n.t, n.event_id) AS prev
  FROM kpi_news2 n {JOIN_E.format(t="n")}
  WHERE {MINE} AND {OVERLAPS} AND n.band <> 'unknown' AND n.t < {W1}
), ep AS (
  SELECT s.hub, s.encounter_id, s.facility_id, s.t,
         CASE WHEN s.band IN ('medium', 'high') AND (s.prev IS NULL OR s.prev NOT IN ('medium', 'high')) THEN 1 ELSE 0 END AS urgent,
         CASE WHEN s.band = 'high' AND (s.prev IS NULL OR s.prev <> 'high') THEN 1 ELSE 0 END AS emergency
  FROM s WHERE s.t >= {W0}
), answered AS (
  SELECT ep.*,
         CASE WHEN EXISTS (SELECT 1 FROM kpi_alarm_acks k WHERE k.hub = ep.hub AND k.encounter_id = ep.encounter_id
                           AND k.kind IN :news2_kinds AND k.t >= ep.t AND k.t <= ep.t + CAST(:urgent_ms AS BIGINT))
              THEN 1 ELSE 0 END AS urgent_ok,
         CASE WHEN EXISTS (SELECT 1 FROM kpi_alarm_acks k WHERE k.hub = ep.hub AND k.encounter_id = ep.encounter_id
                           AND k.kind IN :news2_kinds AND k.t >= ep.t AND k.t <= ep.t + CAST(:emergency_ms AS BIGINT))
              THEN 1 ELSE 0 END AS emergency_ok
  FROM ep WHERE ep.urgent = 1 OR ep.emergency = 1
)
SELECT facility_id,
       SUM(CASE WHEN urgent = 1 AND (urgent_ok = 1 OR t + CAST(:urgent_ms AS BIGINT) <= CAST(:asof AS BIGINT)) THEN 1 ELSE 0 END) AS urgent_episodes,
       SUM(CASE WHEN urgent = 1 AND urgent_ok = 1 THEN 1 ELSE 0 END) AS urgent_answered,
       SUM(CASE WHEN emergency = 1 AND (emergency_ok = 1 OR t + CAST(:emergency_ms AS BIGINT) <= CAST(:asof AS BIGINT)) THEN 1 ELSE 0 END)
         AS emergency_episodes,
       SUM(CASE WHEN emergency = 1 AND emergency_ok = 1 THEN 1 ELSE 0 END) AS emergency_answered
FROM answered
GROUP BY facility_id"""

#: samples received for the core parameters: each hourly count capped at the expected rate and weighted by the share
#: of its clock hour inside the window (a window edge at local midnight can cut a UTC hour), in sample-ms
SAMPLES = f"""
SELECT e.facility_id AS facility_id,
       SUM((CASE WHEN h.n > CAST(:rate AS BIGINT) THEN CAST(:rate AS BIGINT) ELSE h.n END)
           * (CASE WHEN h.hour + {HOUR_MS} > {W1} THEN {W1} ELSE h.hour + {HOUR_MS} END
              - CASE WHEN h.hour < {W0} THEN {W0} ELSE h.hour END)) AS sample_ms
FROM kpi_hourly h {JOIN_E.format(t="h")}
WHERE {MINE} AND {OVERLAPS} AND h.param IN :params AND h.hour < {W1} AND h.hour > {W0} - {HOUR_MS}
GROUP BY e.facility_id"""

QUERIES: dict[str, str] = {"occupied": OCCUPIED, "admissions": ADMISSIONS, "discharges": DISCHARGES, "transfers": TRANSFERS,
                           "alarms": ALARMS, "ack_times": ACK_TIMES, "news2_episodes": NEWS2_EPISODES, "samples": SAMPLES}  # fmt: skip
_EXPANDING = ("facs", "gap_kinds", "news2_kinds", "params")


@dataclass
class Facts:
    """One facility's (or a state's) query results: the numerators and denominators every KPI is made from."""

    occupied_ms: int = 0
    admissions: int = 0
    discharges: int = 0
    stay_ms: int = 0
    died: int = 0
    live: int = 0
    readmitted: int = 0
    transfers: int = 0
    physiological: int = 0
    technical: int = 0
    gaps: int = 0
    raised: int = 0
    ack_ms: list[int] = field(default_factory=list)
    urgent_episodes: int = 0
    urgent_answered: int = 0
    emergency_episodes: int = 0
    emergency_answered: int = 0
    sample_ms: int = 0

    def add(self, other: Facts) -> None:
        for name in self.__dataclass_fields__:
            if name == "ack_ms":
                self.ack_ms.extend(other.ack_ms)
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))


def run(conn: Connection, facility_ids: Sequence[str], w0: int, w1: int, asof: int, settings: KpiSettings) -> dict[str, Facts]:
    """The facts of each facility in ``facility_ids`` over ``[w0, w1)`` as known at ``asof`` (a facility with no data: all zero)."""
    out: dict[str, Facts] = {f: Facts() for f in facility_ids}
    if not facility_ids:
        return out
    params: dict[str, Any] = {"facs": list(facility_ids), "w0": w0, "w1": w1, "asof": asof, "readmit_ms": READMIT_MS,
                              "gap_kinds": list(settings.gap_kinds), "news2_kinds": list(settings.news2_alarm_kinds),
                              "urgent_ms": settings.news2_urgent_min * 60_000, "emergency_ms": settings.news2_emergency_min * 60_000,
                              "rate": settings.expected_per_hour, "params": list(settings.core_params)}  # fmt: skip
    acks: dict[str, list[int]] = defaultdict(list)
    if conn.dialect.name == "postgresql":  # these queries run in milliseconds: compiling them (JIT) took longer than running them
        conn.exec_driver_sql("SET LOCAL jit = off")
    for name, sql in QUERIES.items():
        stmt = text(sql).bindparams(*(bindparam(p, expanding=True) for p in _EXPANDING if f":{p}" in sql))
        used = {k: v for k, v in params.items() if f":{k}" in sql}
        if name == "ack_times":  # many rows: plain tuples
            for facility_id, ack_ms in conn.execute(stmt, used).all():
                acks[facility_id].append(int(ack_ms))
            continue
        for row in conn.execute(stmt, used).mappings():
            facts = out[row["facility_id"]]
            for key, value in row.items():
                if key != "facility_id":
                    setattr(facts, key, int(value or 0))
    for f, values in acks.items():
        out[f].ack_ms = sorted(values)
    return out
