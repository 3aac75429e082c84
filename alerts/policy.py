"""Alarm policy: schema, defaults from ``config/alarms.yaml``, per-ward overrides, validation.

A ward's policy is the ``defaults`` block with that ward's block under
``wards:`` merged over it key by key. Everything is checked when loaded: a
limit with low above high, a negative delay, an unknown priority or key is a
start-up error naming the file and the key, never a silent default.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from alerts.lifecycle import Priority
from teleicu.paths import CONFIG_DIR
from wire.vocabulary import BY_KEY

DEFAULT_FILE = CONFIG_DIR / "alarms.yaml"
ALARM_KINDS = ("limit", "news2", "mews", "qsofa", "trend", "technical")
TECHNICAL = ("no_data", "probe_off", "leads_off", "device_disconnected", "agent_offline", "spool_dropping", "store_unreachable", "undelivered")


class PolicyError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Limit:
    param: str
    low: float | None
    high: float | None
    delay_s: float
    hysteresis: float
    priority: Priority


@dataclass(frozen=True, slots=True)
class ScoreAlarm:
    enabled: bool
    priority: Priority = Priority.MEDIUM


@dataclass(frozen=True, slots=True)
class News2Bands:
    """Whether NEWS2 bands raise alarms; the band edges themselves are the score's (config/scores.yaml)."""

    enabled: bool
    single_three: bool = True


@dataclass(frozen=True, slots=True)
class TrendRule:
    enabled: bool
    points: float
    window_min: int
    priority: Priority
    sustain_min: int = 1
    persist_s: float = 0.0


@dataclass(frozen=True, slots=True)
class WardPolicy:
    limits: dict[str, Limit]
    news2: News2Bands
    mews: ScoreAlarm
    qsofa: ScoreAlarm
    news2_rise: TrendRule
    spo2_fall: TrendRule
    no_data_s: float
    probe_off_delay_s: float
    agent_offline_s: float
    undelivered_s: float
    technical_priority: dict[str, Priority]
    latching: dict[str, bool]
    clear_delay_s: dict[str, float]
    tiers: tuple[str, ...]
    escalate_after_s: dict[Priority, float]
    silence_max_s: float


@dataclass(frozen=True)
class AlarmPolicy:
    defaults: WardPolicy
    wards: dict[str, WardPolicy]
    raw: dict[str, Any]

    def for_ward(self, ward: str) -> WardPolicy:
        return self.wards.get(ward, self.defaults)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _keys(d: Any, allowed: set[str], where: str, required: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    if not isinstance(d, dict):
        raise PolicyError(f"{where}: expected a mapping, got {d!r}")
    unknown = set(d) - allowed
    if unknown:
        raise PolicyError(f"{where}: unknown keys {sorted(unknown)}; allowed {sorted(allowed)}")
    missing = required - set(d)
    if missing:
        raise PolicyError(f"{where}: missing keys {sorted(missing)}")
    return d


def _num(v: Any, where: str, *, lo: float = 0.0) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < lo:
        raise PolicyError(f"{where}: expected a number >= {lo:g}, got {v!r}")
    return float(v)


def _prio(v: Any, where: str) -> Priority:
    if not isinstance(v, str) or v.upper() not in Priority.__members__:
        raise PolicyError(f"{where}: priority must be high, medium or low, got {v!r}")
    return Priority[v.upper()]


def _ward(raw: dict[str, Any], where: str) -> WardPolicy:
    sections = {"limits", "scores", "trends", "technical", "latching", "clear_delay_s", "escalation", "silence_max_s"}
    top = _keys(raw, sections, where, sections)
    limits: dict[str, Limit] = {}
    for param, spec in _keys(top["limits"], set(BY_KEY), f"{where}.limits").items():
        w = f"{where}.limits.{param}"
        spec = _keys(spec, {"low", "high", "delay_s", "hysteresis", "priority"}, w, {"delay_s", "hysteresis", "priority"})
        low = None if spec.get("low") is None else _num(spec["low"], f"{w}.low", lo=-1e9)
        high = None if spec.get("high") is None else _num(spec["high"], f"{w}.high", lo=-1e9)
        if low is None and high is None:
            raise PolicyError(f"{w}: needs a low or a high limit")
        if low is not None and high is not None and low >= high:
            raise PolicyError(f"{w}: low {low:g} must be below high {high:g}")
        p = BY_KEY[param]
        for name, v in (("low", low), ("high", high)):
            if v is not None and not p.lo <= v <= p.hi:
                raise PolicyError(f"{w}.{name} = {v:g} is outside what {param} can measure [{p.lo:g}, {p.hi:g}]")
        limits[param] = Limit(param, low, high, _num(spec["delay_s"], f"{w}.delay_s"), _num(spec["hysteresis"], f"{w}.hysteresis"),
                              _prio(spec["priority"], f"{w}.priority"))  # fmt: skip
    scores = _keys(top["scores"], {"news2", "mews", "qsofa"}, f"{where}.scores", {"news2", "mews", "qsofa"})

    def score(name: str) -> ScoreAlarm:
        s = _keys(scores[name], {"enabled", "priority"}, f"{where}.scores.{name}", {"enabled"})
        if not isinstance(s["enabled"], bool):
            raise PolicyError(f"{where}.scores.{name}.enabled must be true or false")
        return ScoreAlarm(s["enabled"], _prio(s.get("priority", "medium"), f"{where}.scores.{name}.priority"))

    nb = _keys(scores["news2"], {"enabled", "single_three"}, f"{where}.scores.news2", {"enabled"})
    news2 = News2Bands(enabled=bool(nb["enabled"]), single_three=bool(nb.get("single_three", True)))
    trends = _keys(top["trends"], {"news2_rise", "spo2_fall"}, f"{where}.trends", {"news2_rise", "spo2_fall"})

    def trend(name: str) -> TrendRule:
        w = f"{where}.trends.{name}"
        t = _keys(trends[name], {"enabled", "points", "window_min", "sustain_min", "persist_s", "priority"}, w,
                  {"enabled", "points", "window_min", "priority"})  # fmt: skip
        window = int(_num(t["window_min"], f"{w}.window_min", lo=1))
        sustain = int(_num(t.get("sustain_min", 1), f"{w}.sustain_min", lo=1))
        if window > 240 or sustain > window:
            raise PolicyError(f"{w}: window_min must be at most 240 and sustain_min at most window_min")
        persist = _num(t.get("persist_s", 0), f"{w}.persist_s")
        return TrendRule(bool(t["enabled"]), _num(t["points"], f"{w}.points", lo=1), window, _prio(t["priority"], f"{w}.priority"),
                         sustain, persist)  # fmt: skip

    tech = _keys(top["technical"], {"no_data_s", "probe_off_delay_s", "agent_offline_s", "undelivered_s", "priority"}, f"{where}.technical",
                 {"no_data_s", "probe_off_delay_s", "agent_offline_s", "undelivered_s", "priority"})  # fmt: skip
    tprio = _keys(tech["priority"], set(TECHNICAL), f"{where}.technical.priority", set(TECHNICAL))
    latching = _keys(top["latching"], set(ALARM_KINDS), f"{where}.latching", set(ALARM_KINDS))
    if not all(isinstance(v, bool) for v in latching.values()):
        raise PolicyError(f"{where}.latching: values must be true or false")
    clear = _keys(top["clear_delay_s"], set(ALARM_KINDS), f"{where}.clear_delay_s", set(ALARM_KINDS))
    clear_delay = {k: _num(v, f"{where}.clear_delay_s.{k}") for k, v in clear.items()}
    esc = _keys(top["escalation"], {"tiers", "after_s"}, f"{where}.escalation", {"tiers", "after_s"})
    tiers = esc["tiers"]
    if not isinstance(tiers, list) or not tiers or not all(isinstance(t, str) and t for t in tiers):
        raise PolicyError(f"{where}.escalation.tiers must be a non-empty list of role names")
    after = {_prio(k, f"{where}.escalation.after_s"): _num(v, f"{where}.escalation.after_s.{k}", lo=1) for k, v in esc["after_s"].items()}
    silence = _num(top["silence_max_s"], f"{where}.silence_max_s", lo=1)
    if silence > 900:
        raise PolicyError(f"{where}.silence_max_s: a silence may last at most 15 minutes (900 s)")
    return WardPolicy(
        limits=limits,
        news2=news2,
        mews=score("mews"),
        qsofa=score("qsofa"),
        news2_rise=trend("news2_rise"),
        spo2_fall=trend("spo2_fall"),
        no_data_s=_num(tech["no_data_s"], f"{where}.technical.no_data_s", lo=1),
        probe_off_delay_s=_num(tech["probe_off_delay_s"], f"{where}.technical.probe_off_delay_s"),
        agent_offline_s=_num(tech["agent_offline_s"], f"{where}.technical.agent_offline_s"),
        undelivered_s=_num(tech["undelivered_s"], f"{where}.technical.undelivered_s", lo=0.5),
        technical_priority={k: _prio(v, f"{where}.technical.priority.{k}") for k, v in tprio.items()},
        latching=dict(latching),
        clear_delay_s=clear_delay,
        tiers=tuple(tiers),
        escalate_after_s=after,
        silence_max_s=silence,
    )


def parse_policy(raw: Any, where: str = "alarm policy") -> AlarmPolicy:
    top = _keys(raw, {"defaults", "wards"}, where, {"defaults"})
    defaults = _ward(top["defaults"], f"{where}: defaults")
    wards_raw = top.get("wards") or {}
    if not isinstance(wards_raw, dict):
        raise PolicyError(f"{where}: wards must be a mapping of ward -> overrides")
    wards = {str(w): _ward(_merge(top["defaults"], o or {}), f"{where}: wards.{w}") for w, o in wards_raw.items()}
    return AlarmPolicy(defaults=defaults, wards=wards, raw=raw)


def load_policy(path: Path | None = None) -> AlarmPolicy:
    path = path or DEFAULT_FILE
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path}: cannot read alarm policy: {exc}") from None
    return parse_policy(raw, str(path))
