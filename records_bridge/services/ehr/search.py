"""Search, without I/O: the parameters each type supports, parsing a query string, and what a resource is indexed by.

Supported (``SEARCH_PARAMS``): ``patient`` (``subject``/``patient`` reference),
``encounter`` (``encounter``/``context`` reference), ``code`` (``code.coding`` of
an Observation, ``type.coding`` of a Composition or DocumentReference),
``date`` (Observation effective[x], Encounter and Flag ``period.start``,
Composition and DocumentReference ``date``) and, on every type, ``identifier``.

Values: a reference is ``<id>`` or ``<Type>/<id>`` (an absolute URL is cut to
its last two segments); a token is ``code``, ``system|code``, ``|code`` (no
system) or ``system|``; a date is ``[eq|ge|gt|le|lt]`` and ``YYYY``,
``YYYY-MM``, ``YYYY-MM-DD`` or ``YYYY-MM-DDThh:mm[:ss[.f]][Z|±hh:mm]`` (no zone:
UTC). A date stands for the range its precision implies, and the prefixes
compare ranges as FHIR says (``eq``: within; ``ge``/``le``: not wholly
before/after; ``gt``/``lt``: reaching past). Commas separate alternatives (any
may match; ``\\,`` is a literal comma); a parameter repeated must match each time.

Result parameters: ``_count`` (default 50, at most 500: more is cut to 500;
0 gives the total alone) and ``_cursor``, the opaque position the ``next``
link carries (the last internal row id of the page before: paging is keyset
on that id, so pages neither repeat nor skip a resource while writes go on).
``_format`` with a JSON value is accepted and ignored. Anything else, a
modifier (``code:text``), a control character or a malformed value is a
``SearchError`` (a 400).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

DEFAULT_COUNT = 50
MAX_COUNT = 500
MAX_VALUE_LENGTH = 1024
MAX_CLAUSES = 20  # parameters in one search (SQLite refuses expression trees past a depth of 1,000)
MAX_ALTERNATIVES = 50  # comma-separated values of one parameter
DOCUMENT_TYPES = frozenset({"Bundle", "DocumentReference", "Binary"})  # they carry PDFs in base64
MAX_DOCUMENT_COUNT = 20  # a page of them stays within tens of MB

_COMMON = frozenset({"identifier"})
SEARCH_PARAMS: dict[str, frozenset[str]] = {
    "Observation": _COMMON | {"patient", "encounter", "code", "date"},
    "Encounter": _COMMON | {"patient", "date"},
    "Flag": _COMMON | {"patient", "encounter", "date"},
    "Composition": _COMMON | {"patient", "encounter", "code", "date"},
    "DocumentReference": _COMMON | {"patient", "encounter", "code", "date"},
}
RESULT_PARAMS = frozenset({"_count", "_cursor", "_format"})
_REFERENCE_TARGET = {"patient": "Patient", "encounter": "Encounter"}
_DATE_PREFIXES = ("eq", "ge", "gt", "le", "lt")
_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<mo>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,9}))?)?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SearchError(ValueError):
    """A search the EHR cannot run as asked; the message says why (it becomes a 400's diagnostics)."""


@dataclass(frozen=True, slots=True)
class Token:
    """A reference (``value`` ``Type/id``) or a code/identifier; ``system`` None: any system, "": none."""

    value: str | None
    system: str | None = None


@dataclass(frozen=True, slots=True)
class DateRange:
    """A date search value: the prefix and the range ``[lo, hi)`` its precision implies, in µs since the epoch."""

    prefix: Literal["eq", "ge", "gt", "le", "lt"]
    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class Clause:
    """One occurrence of a parameter: a resource matches when any alternative does."""

    param: str
    alternatives: tuple[Token, ...] | tuple[DateRange, ...]


@dataclass(frozen=True, slots=True)
class SearchQuery:
    type: str
    clauses: tuple[Clause, ...]
    count: int = DEFAULT_COUNT
    after: int = 0  # keyset cursor: only rows whose internal id is greater


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One row of the search index: a token (``value``, ``system``) or a date range (``lo``, ``hi``)."""

    param: str
    value: str | None = None
    system: str | None = None
    lo: int | None = None
    hi: int | None = None


def params_for(kind: str) -> frozenset[str]:
    return SEARCH_PARAMS.get(kind, _COMMON)


# ---------------------------------------------------------------------------------------------- parsing a query


def parse_search(kind: str, items: Iterable[tuple[str, str]]) -> SearchQuery:
    """The query ``items`` (name, value pairs, in order, already percent-decoded) ask for; ``SearchError`` otherwise.

    At most ``MAX_CLAUSES`` parameters of ``MAX_ALTERNATIVES`` comma-separated values each; pages of resources that
    carry documents (``DOCUMENT_TYPES``) hold at most ``MAX_DOCUMENT_COUNT``.
    """
    allowed = params_for(kind)
    clauses: list[Clause] = []
    count, after = DEFAULT_COUNT, 0
    for name, value in items:
        if not (name + value).isprintable():
            raise SearchError(f"control characters in the search parameter {name[:40]!r}")
        if len(value) > MAX_VALUE_LENGTH:
            raise SearchError(f"the value of {name!r} is longer than {MAX_VALUE_LENGTH} characters")
        if name == "_count":
            count = min(_non_negative(name, value), MAX_COUNT)
        elif name == "_cursor":
            after = _non_negative(name, value)
        elif name == "_format":
            if value not in ("json", "application/json", "application/fhir+json"):
                raise SearchError(f"_format {value!r}: this server answers JSON only")
        elif ":" in name and name.split(":", 1)[0] in allowed:
            raise SearchError(f"search modifiers are not supported: {name!r}")
        elif name not in allowed:
            raise SearchError(f"unknown search parameter {name!r} for {kind} (supported: {', '.join(sorted(allowed | RESULT_PARAMS))})")
        else:
            if len(clauses) == MAX_CLAUSES:
                raise SearchError(f"more than {MAX_CLAUSES} search parameters")
            clauses.append(_clause(name, value))
    if kind in DOCUMENT_TYPES:
        count = min(count, MAX_DOCUMENT_COUNT)
    return SearchQuery(kind, tuple(clauses), count, after)


def _non_negative(name: str, value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise SearchError(f"{name} must be a non-negative integer, not {value!r}")
    return int(value)


def _clause(name: str, value: str) -> Clause:
    parts = split_alternatives(value)
    if len(parts) > MAX_ALTERNATIVES:
        raise SearchError(f"{name!r} has more than {MAX_ALTERNATIVES} comma-separated values")
    if any(p == "" for p in parts):
        raise SearchError(f"empty value for {name!r}")
    if name == "date":
        return Clause(name, tuple(parse_date_param(p) for p in parts))
    if name in _REFERENCE_TARGET:
        return Clause(name, tuple(Token(parse_reference_param(name, p)) for p in parts))
    return Clause(name, tuple(parse_token(p) for p in parts))


def split_alternatives(value: str) -> list[str]:
    """``value`` cut at unescaped commas; ``\\,`` ``\\|`` ``\\$`` ``\\\\`` keep what follows the backslash."""
    out, cur, i = [], [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in ",|$\\":
            cur.append("\\" + value[i + 1] if value[i + 1] == "|" else value[i + 1])  # \| stays escaped for parse_token
            i += 2
            continue
        if ch == ",":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def parse_token(text: str) -> Token:
    """``code``, ``system|code``, ``|code`` or ``system|`` (an escaped ``\\|`` is part of the text)."""
    cut = re.search(r"(?<!\\)\|", text)
    if cut is None:
        return Token(text.replace("\\|", "|"))
    system, code = text[: cut.start()].replace("\\|", "|"), text[cut.end() :].replace("\\|", "|")
    if not system and not code:
        raise SearchError("a token needs a system or a code, not a lone '|'")
    return Token(code or None, system)


def parse_reference_param(name: str, text: str) -> str:
    """``id``, ``Type/id`` or a URL ending in them, as ``Type/id``; the type must be the parameter's target."""
    target = _REFERENCE_TARGET[name]
    key = reference_key(text) if "/" in text else f"{target}/{text}"
    kind, _, ident = (key or "").partition("/")
    if kind != target or not _ID.fullmatch(ident):
        raise SearchError(f"{name} takes a {target} id or {target}/<id>, not {text!r}")
    return key  # type: ignore[return-value]


def parse_date_param(text: str) -> DateRange:
    prefix = "eq"
    if text[:2].isalpha():
        prefix, text = text[:2], text[2:]
        if prefix not in _DATE_PREFIXES:
            raise SearchError(f"date prefix {prefix!r} is not supported (use {', '.join(_DATE_PREFIXES)})")
    rng = date_range(text)
    if rng is None:
        raise SearchError(f"not a date: {text!r} (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][Z|±hh:mm])")
    return DateRange(prefix, *rng)  # type: ignore[arg-type]


def date_range(text: str) -> tuple[int, int] | None:
    """The range ``[lo, hi)`` (µs since the epoch) a FHIR date/dateTime/instant covers; None when it is not one."""
    m = _DATE.fullmatch(text)
    if m is None:
        return None
    g = m.groupdict()
    try:
        if g["h"] is not None:
            frac = g["f"] or ""
            start = datetime(int(g["y"]), int(g["mo"]), int(g["d"]), int(g["h"]), int(g["mi"]), int(g["s"] or 0),
                             int((frac + "000000")[:6]), tzinfo=UTC)  # fmt: skip
            if g["tz"] and g["tz"] != "Z":
                sign = 1 if g["tz"][0] == "+" else -1
                hh, mm = int(g["tz"][1:3]), int(g["tz"][4:6])
                if hh > 14 or mm > 59:
                    return None
                start -= sign * timedelta(hours=hh, minutes=mm)
            if g["f"]:
                step = timedelta(microseconds=10 ** max(0, 6 - len(g["f"])))
            else:
                step = timedelta(seconds=1) if g["s"] else timedelta(minutes=1)
            end = start + step
        elif g["d"] is not None:
            start = datetime(int(g["y"]), int(g["mo"]), int(g["d"]), tzinfo=UTC)
            end = start + timedelta(days=1)
        elif g["mo"] is not None:
            y, mo = int(g["y"]), int(g["mo"])
            start = datetime(y, mo, 1, tzinfo=UTC)
            end = datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=UTC) if (y, mo) != (9999, 12) else datetime.max.replace(tzinfo=UTC)
        else:
            y = int(g["y"])
            start = datetime(y, 1, 1, tzinfo=UTC)
            end = datetime(y + 1, 1, 1, tzinfo=UTC) if y < 9999 else datetime.max.replace(tzinfo=UTC)
    except (ValueError, OverflowError):  # month 13, 25 o'clock, a zone pushing year 1 below the calendar
        return None
    return _micros(start), _micros(end)


def _micros(t: datetime) -> int:
    d = t - _EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


# -------------------------------------------------------------------------------------------- what gets indexed


def reference_key(ref: str) -> str | None:
    """``Type/id`` of a literal reference (relative, absolute or versioned); a ``urn:`` reference as it is; None if neither."""
    if ref.startswith("urn:"):
        return ref
    parts = ref.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and re.fullmatch(r"[A-Z][A-Za-z]+", parts[-2]) and _ID.fullmatch(parts[-1]):
        return f"{parts[-2]}/{parts[-1]}"
    return None


def index_entries(resource: dict[str, Any]) -> list[IndexEntry]:
    """The index rows of ``resource``: one per reference, coding, identifier and date its type is searched by."""
    kind = str(resource.get("resourceType"))
    allowed = params_for(kind)
    out: list[IndexEntry] = []
    if "patient" in allowed:
        out += _references("patient", [resource.get("subject"), resource.get("patient")])
    if "encounter" in allowed:
        context = resource.get("context")
        ctx_refs = _as_list(context.get("encounter")) if isinstance(context, dict) and "reference" not in context else [context]
        out += _references("encounter", [*_as_list(resource.get("encounter")), *ctx_refs])
    if "code" in allowed:
        concept = resource.get("code") if kind == "Observation" else resource.get("type")
        codings = concept.get("coding") if isinstance(concept, dict) else None
        out += [IndexEntry("code", str(c["code"]), _opt_str(c.get("system"))) for c in _as_list(codings)
                if isinstance(c, dict) and c.get("code") is not None]  # fmt: skip
    out += [IndexEntry("identifier", str(i["value"]), _opt_str(i.get("system"))) for i in _as_list(resource.get("identifier"))
            if isinstance(i, dict) and i.get("value") is not None]  # fmt: skip
    if "date" in allowed:
        for text in _dates(kind, resource):
            rng = date_range(text)
            if rng is not None:
                out.append(IndexEntry("date", lo=rng[0], hi=rng[1]))
    return list(dict.fromkeys(out))  # no duplicates, order kept


def _dates(kind: str, r: dict[str, Any]) -> list[str]:
    if kind == "Observation":
        period = r.get("effectivePeriod")
        candidates = [r.get("effectiveDateTime"), r.get("effectiveInstant"), period.get("start") if isinstance(period, dict) else None]
    elif kind in ("Encounter", "Flag"):
        period = r.get("period")
        candidates = [period.get("start") if isinstance(period, dict) else None]
    else:
        candidates = [r.get("date")]
    return [c for c in candidates if isinstance(c, str)]


def _references(param: str, refs: Sequence[Any]) -> list[IndexEntry]:
    out = []
    for ref in refs:
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            key = reference_key(ref["reference"])
            if key is not None:
                out.append(IndexEntry(param, key))
    return out


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
