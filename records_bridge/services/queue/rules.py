"""The queue's rules, sans I/O: the order tokens are called in, the service day, the wait estimate and the statistics.

Nothing here reads a clock, a database or the network: times are milliseconds
since the epoch handed in by the caller (the store takes them from a clock the
application injects), so day rollover and estimates are tested with frozen time.

Order of calling (``call_key``): category first (priority, then booked, then
walk-in), then the token's *place* (the time it first joined any queue today;
a transferred token keeps its place), then its number.

Wait estimate: ``position × interval``, where position is 1 for the token
called next, and interval is the mean gap between consecutive calls of the
queue over the last ``WINDOW_CALLS`` calls made within ``WINDOW_MS`` (the
queue's throughput, whatever the number of counters serving it); with fewer
than two such calls, the queue's configured default service time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CATEGORIES: tuple[str, ...] = ("priority", "booked", "walk_in")
CATEGORY_RANK = {c: i for i, c in enumerate(CATEGORIES)}
WINDOW_CALLS = 10
WINDOW_MS = 60 * 60 * 1000
DEFAULT_SERVICE_S = 300
ACTIVE = ("waiting", "called", "skipped")  # a patient with a token in one of these holds their place: no second token
FINAL = ("completed", "no_show", "transferred")
DEFAULT_TZ = "Asia/Kolkata"


class RuleError(ValueError):
    """An input the rules refuse (an unknown category or time zone)."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RuleError(f"unknown time zone {name[:64]!r} (use an IANA name such as Asia/Kolkata)") from None


def service_day(at_ms: int, tz: str) -> date:
    """The facility's calendar day at ``at_ms``: a queue's numbers start again at 1 each day, midnight local time."""
    return datetime.fromtimestamp(at_ms / 1000, UTC).astimezone(zone(tz)).date()


def wait_start_ms(issued_ms: int, day: str, slot: str | None, tz: str) -> int:
    """When a token's wait began: when it was issued, for a token issued on its own day; for one booked ahead, its
    slot's time that day (``HH:MM``), or the day's start without a slot, so a visit booked a week ahead does not count
    the week as waiting. (Arrival is not recorded: a patient early for her slot waits longer than this says.)"""
    local = zone(tz)
    start = datetime.combine(date.fromisoformat(day), time(0, 0), local)
    if issued_ms >= start.timestamp() * 1000:
        return issued_ms
    if slot:
        hour, minute = (int(x) for x in slot.split(":"))
        start = start.replace(hour=hour, minute=minute)
    return int(start.timestamp() * 1000)


def call_key(category: str, place_ms: int, number: int) -> tuple[int, int, int]:
    try:
        return (CATEGORY_RANK[category], place_ms, number)
    except KeyError:
        raise RuleError(f"unknown category {category!r}; one of {', '.join(CATEGORIES)}") from None


@dataclass(frozen=True, slots=True)
class Waiting:
    token_id: int
    category: str
    place_ms: int
    number: int


def in_call_order(waiting: Sequence[Waiting]) -> list[Waiting]:
    return sorted(waiting, key=lambda w: call_key(w.category, w.place_ms, w.number))


def call_interval_s(call_times_ms: Sequence[int], now_ms: int, default_s: float = DEFAULT_SERVICE_S) -> float:
    """Mean seconds between consecutive calls among the last ``WINDOW_CALLS`` calls of the last ``WINDOW_MS``."""
    recent = sorted(t for t in call_times_ms if now_ms - WINDOW_MS <= t <= now_ms)[-WINDOW_CALLS:]
    if len(recent) < 2:
        return float(default_s)
    return (recent[-1] - recent[0]) / 1000 / (len(recent) - 1)


def estimate_wait_s(position: int, interval_s: float) -> int:
    """The estimated wait of the token at ``position`` (1 = called next)."""
    return max(0, round(position * interval_s))


def percentile(values: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile (nearest rank): the smallest value with at least p % of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return float(ordered[rank - 1])


def mean(values: Sequence[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


@dataclass(frozen=True, slots=True)
class DayFigures:
    issued: int
    served: int  # completed
    called: int  # called at least once (a recall counts once)
    no_shows: int
    waiting: int
    mean_wait_s: float | None
    p90_wait_s: float | None
    estimate_mae_s: float | None  # mean |estimate at issue - actual wait|, over the tokens called
    estimate_bias_s: float | None  # mean (estimate - actual): positive when the estimates were too long


def day_figures(tokens: Sequence[tuple[str, int | None, int | None]]) -> DayFigures:
    """Figures of one queue-day from its tokens as ``(status, actual_wait_s or None, estimate_s or None)``.

    Each token counts once, whatever it went through (a recall, a skip); a transferred token is counted in the
    queue it went to, not in the one it left (it left no wait there and is not served there).
    """
    kept = [t for t in tokens if t[0] != "transferred"]
    waits = [w for _s, w, _e in kept if w is not None]
    errors = [(e - w) for _s, w, e in kept if w is not None and e is not None]
    return DayFigures(
        issued=len(kept),
        served=sum(1 for s, _w, _e in kept if s == "completed"),
        called=len(waits),
        no_shows=sum(1 for s, _w, _e in kept if s == "no_show"),
        waiting=sum(1 for s, _w, _e in kept if s == "waiting"),
        mean_wait_s=mean(waits),
        p90_wait_s=percentile(waits, 90),
        estimate_mae_s=mean([abs(x) for x in errors]),
        estimate_bias_s=mean(errors),
    )


def reminder_due(position: int, ahead: int) -> bool:
    """Whether a waiting token at ``position`` (1 = next) should be reminded, ``ahead`` being the queue's setting:
    remind when at most ``ahead`` patients are before it (0 switches reminders off)."""
    return ahead > 0 and position - 1 <= ahead


def display_number(prefix: str, number: int) -> str:
    """What the board and the slip show: the queue's prefix and the number, e.g. ``OPD-007``."""
    return f"{prefix}-{number:03d}" if prefix else f"{number:03d}"
