"""Alarm policy: the schema of an alarm policy file (``config/alarms.yaml``), per-ward overrides, validation.

A ward's policy is the ``defaults`` block with that ward's block under
``wards:`` merged over it key by key. Everything is checked when loaded: a
limit with low above high, a negative delay, an unknown priority or key is a
start-up error naming the file and the key path (``PolicyError``, a
``wire.config.ConfigError``), never a silent default. Nothing is loaded at
import: the command line loads the file and hands the policy to the hub.

The models mirror the file; ``WardPolicy`` also offers the flat names the
alarm engine reads (``no_data_s``, ``tiers``, ``news2_rise`` ...).
"""

from __future__ import annotations

import copy
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from alerts.lifecycle import Priority
from wire.config import ConfigError, ConfigModel, Expect, Problem, check_keys, load, unknown_keys, validate
from wire.vocabulary import BY_KEY

ALARM_KINDS = ("limit", "arrhythmia", "news2", "mews", "qsofa", "trend", "technical")
TECHNICAL = ("no_data", "probe_off", "leads_off", "device_disconnected", "agent_offline", "spool_dropping", "store_unreachable", "hub_overloaded", "undelivered",
             "patient_mismatch", "ecg_poor", "pleth_poor")  # fmt: skip
SILENCE_MAX_S = 900  # a silence may last at most 15 minutes
#: IEC 60601-2-27 (ECG monitoring equipment): heart-rate alarms must come within 10 s of the condition
#: (shared/clinical/alarms.md). A heart-rate limit's persistence delay plus its artefact hold may not exceed it.
IEC_60601_2_27_HR_ALARM_DELAY_S = 10.0
#: No standard we could check sets a ceiling for the SpO2 alarm delay (ISO 80601-2-61 asks only that it be disclosed);
#: teleicu's own ceiling for the SpO2 persistence delay plus its artefact hold is twice the default persistence (15 s).
SPO2_ALARM_DELAY_MAX_S = 30.0
#: The hub analyses each ECG and pleth every 2 s (``alerts.waveforms.quality.CADENCE_S``, checked by a test): an
#: asystole is seen at most this long after it has lasted ``pause_s``, so ``pause_s`` plus this stays within IEC's 10 s.
WAVEFORM_CADENCE_S = 2.0
#: Asystole alarm thresholds bedside monitors offer: 3 to 10 s without a QRS (4 s the usual default).
ASYSTOLE_PAUSE_MIN_S = 3.0


class PolicyError(ConfigError):
    """An alarm policy (or a per-bed limit) that cannot be used."""


def _priority(value: Any) -> Any:
    if isinstance(value, Priority):
        return value
    if not isinstance(value, str) or value.upper() not in Priority.__members__:
        raise ValueError(f"must be high, medium or low, not {value!r}")
    return Priority[value.upper()]


def _keys_exactly(expected: tuple[str, ...]) -> BeforeValidator:
    """A mapping with exactly the ``expected`` keys (anything else is left to the type's own check)."""

    def check(raw: Any) -> Any:
        if isinstance(raw, dict):
            check_keys(raw, expected)
        return raw

    return BeforeValidator(check)


PriorityName = Annotated[Priority, BeforeValidator(_priority)]
Seconds = Annotated[float, Field(ge=0)]


class Limit(ConfigModel):
    """A physiological limit of one parameter: ``low`` and/or ``high``, held ``delay_s``, cleared ``hysteresis`` inside."""

    param: str  # the vocabulary key (the key under ``limits:``)
    low: float | None = None
    high: float | None = None
    delay_s: Seconds
    hysteresis: Annotated[float, Field(ge=0)]
    priority: PriorityName

    @model_validator(mode="after")
    def _one_side_at_least(self) -> Limit:
        if self.low is None and self.high is None:
            raise ValueError("needs a low or a high limit")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"low {self.low:g} must be below high {self.high:g}")
        return self


class ScoreAlarm(ConfigModel):
    enabled: bool
    priority: PriorityName = Priority.MEDIUM


class News2Bands(ConfigModel):
    """Whether NEWS2 bands raise alarms; the band edges themselves are the score's (config/scores.yaml)."""

    enabled: bool
    single_three: bool = True


class TrendRule(ConfigModel):
    enabled: bool
    points: Annotated[float, Field(ge=1)]
    window_min: Annotated[int, Field(ge=1)]
    priority: PriorityName
    sustain_min: Annotated[int, Field(ge=1)] = 1
    persist_s: Seconds = 0.0

    @model_validator(mode="after")
    def _windows(self) -> TrendRule:
        if self.window_min > 240 or self.sustain_min > self.window_min:
            raise ValueError("window_min must be at most 240 and sustain_min at most window_min")
        return self


class ScoreAlarms(ConfigModel):
    news2: News2Bands
    mews: ScoreAlarm
    qsofa: ScoreAlarm


class TrendRules(ConfigModel):
    news2_rise: TrendRule
    spo2_fall: TrendRule


class TechnicalRules(ConfigModel):
    no_data_s: Annotated[float, Field(ge=1)]
    probe_off_delay_s: Seconds
    agent_offline_s: Seconds
    undelivered_s: Annotated[float, Field(ge=0.5)]
    priority: Annotated[dict[str, PriorityName], _keys_exactly(TECHNICAL)]


class ArtefactRules(ConfigModel):
    """Artefact-aware alarming: heart-rate and SpO2 limit alarms checked against the waveforms' signal quality.

    Without fresh quality information for a bed (no waveform, or a verdict older
    than ``stale_s``) the alarms behave exactly as without this block."""

    enabled: bool
    stale_s: Annotated[float, Field(ge=1, le=60)]  # a lead's quality older than this is no information
    ecg_hold_s: Annotated[float, Field(ge=0, le=IEC_60601_2_27_HR_ALARM_DELAY_S)]  # longest hold of an HR alarm, poor ECG
    pleth_tolerance_bpm: Annotated[float, Field(ge=0, le=50)]  # pleth pulse confirms HR within this many beats/min
    spo2_hold_s: Annotated[float, Field(ge=0, le=SPO2_ALARM_DELAY_MAX_S)]  # longest hold of an SpO2 alarm, poor pleth
    poor_ecg_s: Annotated[float, Field(ge=5)]  # poor ECG this long: technical alarm "check ECG leads"
    poor_pleth_s: Annotated[float, Field(ge=5)]  # poor pleth this long: technical alarm "check SpO2 probe"


class AsystoleRule(ConfigModel):
    """The asystole alarm (``alerts.arrhythmia``): no QRS on the analysed ECG for ``pause_s`` and no pulse on the pleth."""

    enabled: bool
    pause_s: Annotated[float, Field(ge=ASYSTOLE_PAUSE_MIN_S, le=IEC_60601_2_27_HR_ALARM_DELAY_S - WAVEFORM_CADENCE_S)]


class ArrhythmiaRules(ConfigModel):
    asystole: AsystoleRule


class Escalation(ConfigModel):
    tiers: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1), Expect("a non-empty list of role names")]
    after_s: dict[PriorityName, Annotated[float, Field(ge=1)]]


class WardPolicy(ConfigModel):
    """One ward's alarm policy, as in the file; the properties are the flat names the engine reads."""

    limits: dict[str, Limit]
    scores: ScoreAlarms
    trends: TrendRules
    technical: TechnicalRules
    latching: Annotated[dict[str, bool], _keys_exactly(ALARM_KINDS)]
    clear_delay_s: Annotated[dict[str, Seconds], _keys_exactly(ALARM_KINDS)]
    escalation: Escalation
    silence_max_s: Annotated[float, Field(ge=1)]
    artefact: ArtefactRules
    arrhythmia: ArrhythmiaRules

    @field_validator("limits", mode="before")
    @classmethod
    def _name_limits(cls, raw: Any) -> Any:
        """Each limit gets its parameter from its key, which must be in the vocabulary."""
        if not isinstance(raw, dict):
            return raw
        check_keys(raw, tuple(BY_KEY), required=False)
        for key, spec in raw.items():
            if isinstance(spec, dict) and "param" in spec:  # not a key of the file: the parameter is the key above
                raise Problem(unknown_keys(["param"], [k for k in Limit.model_fields if k != "param"]), key)
        return {key: {"param": key, **spec} if isinstance(spec, dict) else spec for key, spec in raw.items()}

    @field_validator("limits")
    @classmethod
    def _measurable(cls, limits: dict[str, Limit]) -> dict[str, Limit]:
        for key, lim in limits.items():
            p = BY_KEY[key]
            for side, value in (("low", lim.low), ("high", lim.high)):
                if value is not None and not p.lo <= value <= p.hi:
                    raise Problem(f"{value:g} is outside what {key} can measure [{p.lo:g}, {p.hi:g}]", (key, side))
        return limits

    @model_validator(mode="after")
    def _holds_within_delay_limits(self) -> WardPolicy:
        """A held alarm is late by its hold: the persistence delay plus the hold must stay within the standard's limit."""
        a = self.artefact
        if not a.enabled:
            return self
        checks = (("hr", a.ecg_hold_s, "ecg_hold_s", IEC_60601_2_27_HR_ALARM_DELAY_S, "IEC 60601-2-27's limit for heart-rate alarms"),
                  ("spo2", a.spo2_hold_s, "spo2_hold_s", SPO2_ALARM_DELAY_MAX_S, "teleicu's ceiling for SpO2 alarms"))  # fmt: skip
        for param, hold, key, most, whose in checks:
            lim = self.limits.get(param)
            if lim is not None and lim.delay_s + hold > most:
                raise Problem(f"limits.{param}.delay_s {lim.delay_s:g} s plus a hold of {hold:g} s would delay the alarm "
                              f"{lim.delay_s + hold:g} s, beyond {whose} ({most:g} s)", ("artefact", key))  # fmt: skip
        return self

    @field_validator("silence_max_s")
    @classmethod
    def _silence(cls, value: float) -> float:
        if value > SILENCE_MAX_S:
            raise ValueError(f"a silence may last at most 15 minutes ({SILENCE_MAX_S} s)")
        return value

    @property
    def news2(self) -> News2Bands:
        return self.scores.news2

    @property
    def mews(self) -> ScoreAlarm:
        return self.scores.mews

    @property
    def qsofa(self) -> ScoreAlarm:
        return self.scores.qsofa

    @property
    def news2_rise(self) -> TrendRule:
        return self.trends.news2_rise

    @property
    def spo2_fall(self) -> TrendRule:
        return self.trends.spo2_fall

    @property
    def asystole(self) -> AsystoleRule:
        return self.arrhythmia.asystole

    @property
    def no_data_s(self) -> float:
        return self.technical.no_data_s

    @property
    def probe_off_delay_s(self) -> float:
        return self.technical.probe_off_delay_s

    @property
    def agent_offline_s(self) -> float:
        return self.technical.agent_offline_s

    @property
    def undelivered_s(self) -> float:
        return self.technical.undelivered_s

    @property
    def technical_priority(self) -> dict[str, Priority]:
        return self.technical.priority

    @property
    def tiers(self) -> tuple[str, ...]:
        return tuple(self.escalation.tiers)

    @property
    def escalate_after_s(self) -> dict[Priority, float]:
        return self.escalation.after_s


class AlarmPolicy(ConfigModel):
    """An alarm policy file: ``defaults``, and per-ward overrides merged over them key by key."""

    defaults: WardPolicy
    wards: dict[str, WardPolicy] = {}

    @model_validator(mode="before")
    @classmethod
    def _merge_wards(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or not isinstance(raw.get("defaults"), dict):
            return raw
        wards = raw.get("wards") or {}
        if not isinstance(wards, dict):
            return raw  # refused by the type check, with the key named
        merged = {str(ward): _merge(raw["defaults"], over or {}) if isinstance(over or {}, dict) else over for ward, over in wards.items()}
        return {**raw, "wards": merged}

    def for_ward(self, ward: str) -> WardPolicy:
        return self.wards.get(ward, self.defaults)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_policy(raw: Any, where: str = "alarm policy") -> AlarmPolicy:
    """Validate an already-parsed policy; ``where`` names it in error messages."""
    return validate(AlarmPolicy, raw, where, PolicyError)


def load_policy(path: Path | Traversable) -> AlarmPolicy:
    """Read and validate an alarm policy file."""
    return load(AlarmPolicy, path, "alarm policy", PolicyError)
