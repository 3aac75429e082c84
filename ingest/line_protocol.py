"""InfluxDB line protocol encoding: escaping, typed field values, millisecond timestamps.

A line is ``measurement[,tag=value...] field=value[,field=value...] timestamp``.
Pure functions, no I/O; ``ingest.influx_schema`` builds teleicu's lines from them.

Escaping (as InfluxDB 1.x, 2.x and 3.x parse it):

- measurement: ``,`` and space are backslash-escaped;
- tag keys, tag values and field keys: ``,``, ``=`` and space are backslash-escaped;
- string field values: double-quoted, ``"`` and ``\\`` backslash-escaped.

Line protocol has no escape for a backslash at the end of a tag value, nor for a
newline in a tag, so tag *values* (bed, device, ward identifiers that come from
edge agents) are made safe by percent-encoding ``%``, ``\\`` and control
characters (``A\\01`` is stored as ``A%5C01``; ``unquote_tag_value`` undoes it).
The mapping is one-to-one, so queries that encode their literal the same way
(``ingest.influx_schema``) find exactly the series written. Keys and measurements
are teleicu's own names; one that is empty or holds a backslash, double quote
or control character raises ``LineProtocolError``.

Field values are given pre-encoded by ``float_field``, ``int_field``,
``bool_field`` and ``string_field`` so a value's InfluxDB type never depends on
whether a number happened to arrive as ``82`` or ``82.0`` (a type change is a
rejected write).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

MAX_STRING_FIELD = 64 * 1024  # bytes; InfluxDB 1.x refuses longer string field values
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_MEASUREMENT_ESCAPES = str.maketrans({",": "\\,", " ": "\\ "})
_KEY_ESCAPES = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_STRING_ESCAPES = str.maketrans({'"': '\\"', "\\": "\\\\"})
_UNSAFE_NAME = re.compile(r'[\\"\x00-\x1f\x7f]')
_PERCENT_NEEDED = re.compile(r"[%\\\x00-\x1f\x7f]")
_PERCENT_ESCAPE = re.compile(r"%([0-9A-F]{2})")


class LineProtocolError(ValueError):
    """A value cannot be written as line protocol (empty or unsafe name, NaN, out-of-range integer, no fields)."""


def _name(kind: str, s: str) -> None:
    if not s:
        raise LineProtocolError(f"{kind} must not be empty")
    if _UNSAFE_NAME.search(s):
        raise LineProtocolError(f"{kind} {s!r} holds a backslash, double quote or control character")


def escape_measurement(name: str) -> str:
    _name("measurement", name)
    if name.startswith("#"):
        raise LineProtocolError(f"measurement {name!r} would read as a comment line")
    return name.translate(_MEASUREMENT_ESCAPES)


def escape_key(key: str) -> str:
    """A tag key or field key."""
    _name("key", key)
    if key == "time":
        raise LineProtocolError("'time' cannot be a tag or field key")
    return key.translate(_KEY_ESCAPES)


def _percent(m: re.Match[str]) -> str:
    return f"%{ord(m.group(0)):02X}"


def quote_tag_value(value: str) -> str:
    """The tag value as stored: ``%``, ``\\`` and control characters percent-encoded (one-to-one)."""
    return _PERCENT_NEEDED.sub(_percent, value)


def unquote_tag_value(stored: str) -> str:
    """Inverse of ``quote_tag_value``, for readers of stored tags."""
    return _PERCENT_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), stored)


def escape_tag_value(value: str) -> str:
    """A tag value ready for a line: percent-quoted, then ``,``/``=``/space escaped. Must not be empty."""
    if not value:
        raise LineProtocolError("tag value must not be empty (omit the tag instead)")
    return quote_tag_value(value).translate(_KEY_ESCAPES)


def float_field(x: float) -> str:
    v = float(x)
    if not math.isfinite(v):
        raise LineProtocolError(f"float field must be finite, got {x!r}")
    return repr(v)


def int_field(i: int) -> str:
    if isinstance(i, bool) or not isinstance(i, int):
        raise LineProtocolError(f"integer field must be an int, got {i!r}")
    if not INT64_MIN <= i <= INT64_MAX:
        raise LineProtocolError(f"integer field {i} is outside int64")
    return f"{i}i"


def bool_field(b: bool) -> str:
    return "true" if b else "false"


def string_field(s: str) -> str:
    if len(s.encode()) > MAX_STRING_FIELD:
        raise LineProtocolError(f"string field of {len(s.encode())} bytes exceeds {MAX_STRING_FIELD}")
    return '"' + s.translate(_STRING_ESCAPES) + '"'


def encode_line(measurement: str, tags: Mapping[str, str], fields: Mapping[str, str], t_ms: int) -> str:
    """One line (without the trailing newline). ``fields`` values come from the ``*_field`` functions.

    Tags with an empty value are left out (line protocol has no empty tag); tags
    are sorted by key, as InfluxDB prefers. At least one field is required.
    """
    if not fields:
        raise LineProtocolError(f"a {measurement!r} point needs at least one field")
    if isinstance(t_ms, bool) or not isinstance(t_ms, int) or not INT64_MIN // 1_000_000 <= t_ms <= INT64_MAX // 1_000_000:
        raise LineProtocolError(f"timestamp must be integer ms within InfluxDB's range, got {t_ms!r}")
    head = escape_measurement(measurement)
    tag_part = "".join(f",{escape_key(k)}={escape_tag_value(v)}" for k, v in sorted(tags.items()) if v)
    field_part = ",".join(f"{escape_key(k)}={v}" for k, v in fields.items())
    return f"{head}{tag_part} {field_part} {t_ms}"
