"""How the embedded store keeps vitals: one row per bed and second, read back as one row per sample.

One row per sample, keyed (bed, parameter, device time), made each insert touch
its own B-tree leaf: 40,000 series at 4,000 beds dirtied 40,000 pages a second,
and the cost of a sample grew with the table (7.4 µs at 0.6 M rows, 27.6 µs at
6 M; ``bench/sqlite_numerics.py``). Here a bed's samples of one device second
share a row, ``numeric_seconds(bed, sec, data)``: a bed's rows are adjacent, so
one leaf per bed is dirtied, and a sample costs 3.7 µs at 0.6 M and 7.0 µs at
6 M, flat from 1.8 M (about a quarter as much at 6 M).

``data`` is a JSON array of entries ``[param, ms, value, flags, device, rx]``:
``ms`` the device time's milliseconds within ``sec``, ``rx`` the edge's receive
time minus the device time, ``value`` null when the device gave none. JSON so
that any SQLite client can read it: the ``numerics`` view gives back one row per
sample (``bed, param, t, value, flags, device, t_rx``), as the table of that name
held before this layout, and the file's readers and SQL queries kept working.

A sample's identity is unchanged: (bed, parameter, device time). Writing a
sample again replaces it (``UPSERT_SQL`` merges a row's entries with the new
ones, the new winning), so a replay never duplicates, and several frames may
write into one bed-second.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import orjson

from wire.messages import Observation

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS numeric_seconds (
    bed TEXT NOT NULL, sec INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (bed, sec)
) WITHOUT ROWID;
"""

VIEW_SQL = """
CREATE VIEW IF NOT EXISTS numerics (bed, param, t, value, flags, device, t_rx) AS
SELECT s.bed, json_extract(e.value, '$[0]'), s.sec * 1000 + json_extract(e.value, '$[1]'), json_extract(e.value, '$[2]'),
       json_extract(e.value, '$[3]'), json_extract(e.value, '$[4]'),
       s.sec * 1000 + json_extract(e.value, '$[1]') + json_extract(e.value, '$[5]')
FROM numeric_seconds AS s, json_each(s.data) AS e;
"""

SCHEMA = TABLE_SQL + VIEW_SQL

# the row's entries whose (param, ms) the new row does not have, then the new row's
UPSERT_SQL = """
INSERT INTO numeric_seconds (bed, sec, data) VALUES (?, ?, ?)
ON CONFLICT (bed, sec) DO UPDATE SET data = (
    SELECT json_group_array(json(kept.v)) FROM (
        SELECT old.value AS v FROM json_each(numeric_seconds.data) AS old
        WHERE NOT EXISTS (
            SELECT 1 FROM json_each(excluded.data) AS new
            WHERE json_extract(new.value, '$[0]') = json_extract(old.value, '$[0]')
              AND json_extract(new.value, '$[1]') = json_extract(old.value, '$[1]'))
        UNION ALL
        SELECT new.value FROM json_each(excluded.data) AS new
    ) AS kept)
"""

# samples of some parameters of one bed in [since, until] ms: the rows of the seconds concerned, then their entries
READ_SQL = """
SELECT json_extract(e.value, '$[0]') AS param, s.sec * 1000 + json_extract(e.value, '$[1]') AS t,
       json_extract(e.value, '$[2]'), json_extract(e.value, '$[3]')
FROM numeric_seconds AS s, json_each(s.data) AS e
WHERE s.bed = ? AND s.sec BETWEEN ? AND ? AND param IN ({params}) AND t BETWEEN ? AND ?
ORDER BY t LIMIT ?
"""


def rows(obs: Iterable[Observation]) -> list[tuple[str, int, str]]:
    """``numeric_seconds`` rows for samples: grouped by bed and second; of one sample given twice, the last."""
    seconds: dict[tuple[str, int], dict[tuple[str, int], tuple]] = {}
    for o in obs:
        sec, ms = divmod(o.t_dev, 1000)
        value = None if o.value is None else float(o.value)
        seconds.setdefault((o.bed, sec), {})[(o.param, ms)] = (o.param, ms, value, o.flags, o.device, o.t_rx - o.t_dev)
    return [(bed, sec, orjson.dumps(list(entries.values())).decode()) for (bed, sec), entries in seconds.items()]


def read_sql(n_params: int) -> str:
    return READ_SQL.format(params=",".join("?" * n_params))


def read_args(bed: str, params: list[str], since: int, until: int, limit: int) -> tuple:
    """``READ_SQL``'s arguments; the limit is applied in SQL for one parameter (for several: by the caller, each)."""
    return (bed, since // 1000, until // 1000, *params, since, until, limit if len(params) == 1 else -1)


def migrate_sample_rows(conn: sqlite3.Connection) -> None:
    """An older file's ``numerics`` table (one row per sample) becomes ``numeric_seconds``; the view comes after.

    Values go through SQLite's JSON text, which writes a REAL with 15 significant
    digits: a device's decimal reading comes back exactly.
    """
    kind = conn.execute("SELECT type FROM sqlite_master WHERE name = 'numerics'").fetchone()
    if kind is None or kind[0] != "table":
        return  # a new file, or one without samples (the InfluxDB store's state)
    conn.execute(TABLE_SQL)
    conn.execute(
        "INSERT INTO numeric_seconds (bed, sec, data) "
        "SELECT bed, t / 1000, json_group_array(json_array(param, t % 1000, value, flags, device, t_rx - t)) "
        "FROM numerics GROUP BY bed, t / 1000"
    )
    conn.execute("DROP TABLE numerics")
