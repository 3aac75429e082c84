"""Replay labelled episodes through the real alarm engine, before and after artefact-aware alarming, and score the alarms.

For the labelled evaluation of issue 18. ``replay(episode, policy, tables, mode)``
drives a fresh ``AlarmEngine`` for one bed, once a second (the hub ticks at
least every ``max_tick_ms`` = 1 s, and shortly after each 1 Hz numeric), with
the episode's numerics as the hub's bed matrix holds them: the latest value the
monitor showed, a blank (NaN) one not sent, so the last value stands until it is
older than the hub's staleness (``staleness_s``, 30 s for hr/pr/spo2 in
``config/hub.yaml``); the other vitals are normal and constant. Two modes:

* ``before``: no lead qualities (today's behaviour: the numbers alone);
* ``after``: every ``CADENCE_S`` (2 s), ``analyse_ecg``/``analyse_pleth`` on the
  last ``WINDOW_S`` (10 s) of the episode's waveforms, fed in with
  ``set_lead_quality`` before the tick, as the hub's signal worker would.

``score(pairs)`` compares the two replays of each episode with its labels
(``EpisodeScore``); ``summarise`` turns many into the table the bench prints.
Definitions (also in docs/clinical-rules.md, "Artefact-aware alarming"):

* a true event is **detected** when an alarm of its kind (``EVENT_ALARM``, or
  one of ``ALSO_DETECTS``: an asystole by the asystole alarm too) is raised
  between the label's start and its end plus ``grace_s`` for the kind (the
  policy's persistence delay plus the longest hold: the latest the engine may
  raise a condition that started inside the label);
* an event is **alarmable** when the truth stays beyond the limit alarm's limit
  for its persistence delay, or, for an asystole while the policy's asystole
  alarm is on, when the true pause between two R waves is at least its ``pause_s``;
* a **false alarm** is a physiological alarm raised outside every true event's
  window (in an artefact or normal episode, all of them); ``false_gated`` counts
  only the kinds artefact-aware alarming may hold (HR and SpO2 limits);
* **added delay**: the after replay's raise time minus the before replay's, for
  events detected in both; **engine delay**: from when the hub's value first went
  beyond the limit (in the run that led to the alarm) to the raise.

Pure computation, no I/O: one 120 s episode replays in well under a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from alerts.engine import AlarmEngine
from alerts.kinds import ASYSTOLE, HR_HIGH, HR_LOW, PHYSIOLOGICAL, SPO2_LOW
from alerts.lifecycle import AlarmBook
from alerts.policy import AlarmPolicy
from alerts.score_tables import ScoreTables
from alerts.scoring import score_beds
from alerts.technical import TechnicalView
from alerts.waveforms.quality import CADENCE_S, WINDOW_S, analyse_ecg, analyse_pleth
from simulators.episodes import EVENT_KINDS, KINDS, Episode, Label
from wire.vocabulary import COLUMN, PARAMETERS

BEFORE, AFTER = "before", "after"
MODES = (BEFORE, AFTER)
BED, WARD = "EVAL-01", "A"
#: the other vitals, normal and constant (NEWS2 0 from them)
OTHER_VITALS = {"rr": 16.0, "nibp_sys": 120.0, "temp": 37.0, "o2": 0.0, "acvpu": 0.0}
#: the limit alarm that raises each true event (asystole shows as HR 0, VT as a high HR)
EVENT_ALARM = {"bradycardia": HR_LOW, "tachycardia": HR_HIGH, "asystole": HR_LOW, "vtach": HR_HIGH, "desaturation": SPO2_LOW}
#: other alarm kinds that detect an event: an asystole is detected by HR low or by the asystole alarm
ALSO_DETECTS: dict[str, tuple[str, ...]] = {"asystole": (ASYSTOLE,)}
#: IEC 60601-1-8 sense: an event whose omission may cause death or irreversible injury. Asystole and VT are high
#: priority on every bedside monitor whatever the HR limit's priority; desaturation is high in the default policy.
HIGH_PRIORITY_EVENTS = ("asystole", "vtach", "desaturation")
_PARAM_OF = {HR_LOW: ("hr", "low"), HR_HIGH: ("hr", "high"), SPO2_LOW: ("spo2", "low")}


@dataclass(frozen=True, slots=True)
class RaisedAlarm:
    kind: str
    priority: str
    category: str
    at_ms: int
    held_since: int | None  # when it was held as possible artefact first (None: never held)


@dataclass(frozen=True, slots=True)
class HoldOutcome:
    kind: str
    event: str  # "held", "raised" (after the hold) or "suppressed"
    at_ms: int
    note: str


@dataclass(frozen=True)
class Replay:
    mode: str
    kind: str
    seed: int
    t0_ms: int
    duration_s: float
    raised: tuple[RaisedAlarm, ...]
    holds: tuple[HoldOutcome, ...]
    hub_values: dict[str, np.ndarray]  # what the bed matrix held at each tick: hr, spo2 (NaN: stale/none)
    tick_ms: np.ndarray
    poor_windows: dict[str, int] = field(default_factory=dict)  # ecg/pleth windows judged poor (after only)


def _hub_series(shown: np.ndarray, staleness_s: float) -> np.ndarray:
    """What the bed matrix holds at each 1 Hz tick: the last value shown until older than ``staleness_s``."""
    out = np.full(len(shown), np.nan)
    last, last_i = np.nan, -(10**9)
    for i, v in enumerate(shown):
        if np.isfinite(v):
            last, last_i = float(v), i
        out[i] = last if i - last_i <= staleness_s else np.nan
    return out


def replay(ep: Episode, policy: AlarmPolicy, tables: ScoreTables, mode: str, *, staleness_s: float = 30.0) -> Replay:
    """Drive a fresh engine through ``ep`` in ``mode`` ("before" or "after"); see the module docstring."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    engine = AlarmEngine(policy, AlarmBook(), tables)
    ticks = np.asarray(ep.numerics_t_ms, dtype=np.int64)
    hub = {p: _hub_series(np.asarray(ep.numerics[p], dtype=float), staleness_s) for p in ("hr", "pr", "spo2")}
    values = np.full((1, len(PARAMETERS)), np.nan)
    for k, v in OTHER_VITALS.items():
        values[0, COLUMN[k]] = v
    flags = np.zeros((1, len(PARAMETERS)), dtype=np.int16)
    raised: list[RaisedAlarm] = []
    holds: list[HoldOutcome] = []
    poor = {"ecg": 0, "pleth": 0}
    every = int(round(CADENCE_S * 1000))
    for i, now in enumerate(ticks.tolist()):
        for p in ("hr", "pr", "spo2"):
            values[0, COLUMN[p]] = hub[p][i]
        t_s = (now - ep.t0_ms) / 1000.0
        if mode == AFTER and t_s >= WINDOW_S and (now - ep.t0_ms) % every == 0:
            for sig, x, fs, analyse in (("ecg", ep.ecg, ep.ecg_fs, analyse_ecg), ("pleth", ep.pleth, ep.pleth_fs, analyse_pleth)):
                end = int(round(t_s * fs))
                q = analyse(x[end - int(WINDOW_S * fs) : end], fs, now)
                poor[sig] += not q.good
                engine.set_lead_quality(BED, q)
        view = TechnicalView(now=now, beds=[BED], wards=[WARD], agents=["eval"], last_rx=np.full(1, now), watched_since=np.full(1, ep.t0_ms),
                             flags=flags, agents_offline={}, store_error=None)  # fmt: skip
        sc = score_beds(values.copy(), np.zeros(1, dtype=bool), tables)
        for ev in engine.evaluate(now, [BED], [WARD], sc, view):
            a = ev.alert
            if ev.event == "raised":
                raised.append(RaisedAlarm(a.kind, a.priority, a.category, now, a.held_since))
            if ev.event in ("held", "suppressed") or (ev.event == "raised" and a.held_since is not None):
                holds.append(HoldOutcome(a.kind, ev.event, now, ev.note or ""))
    return Replay(mode, ep.kind, ep.seed, ep.t0_ms, ep.duration_s, tuple(raised), tuple(holds),
                  {"hr": hub["hr"], "spo2": hub["spo2"]}, ticks, poor)  # fmt: skip


# --- scoring ----------------------------------------------------------------------------------


def grace_s(policy: AlarmPolicy, alarm_kind: str, ward: str = WARD) -> float:
    """How long after a true event's end its alarm still counts: the persistence delay plus the longest hold."""
    wp = policy.for_ward(ward)
    param, _ = _PARAM_OF[alarm_kind]
    hold = wp.artefact.spo2_hold_s if param == "spo2" else wp.artefact.ecg_hold_s
    return wp.limits[param].delay_s + hold


@dataclass(frozen=True)
class EventOutcome:
    kind: str  # the true event
    alarmable: bool  # the true value (not the monitor's) stayed beyond the alarm's limit for its persistence delay
    detected: dict[str, bool]  # mode -> detected
    raised_ms: dict[str, int | None]  # mode -> time of the alarm that detected it
    delay_s: dict[str, float | None]  # mode -> from the label's start to the alarm
    engine_delay_s: dict[str, float | None]  # mode -> from the hub's value going beyond the limit to the alarm
    priority: str | None  # the after alarm's priority
    any_alarm: dict[str, bool]  # mode -> some physiological alarm (of any kind: NEWS2, trend, ...) raised in the window
    detected_by: dict[str, str | None] = field(default_factory=dict)  # mode -> the alarm kind that detected it
    from_last_beat_s: dict[str, float | None] = field(default_factory=dict)  # asystole: last true R wave -> alarm


@dataclass(frozen=True)
class EpisodeScore:
    kind: str
    seed: int
    hours: float
    events: tuple[EventOutcome, ...]
    false_alarms: dict[str, int]  # mode -> physiological alarms outside every true event's window
    false_gated: dict[str, int]  # mode -> of those, HR and SpO2 limit alarms
    false_by_kind: dict[str, dict[str, int]]  # mode -> alarm kind -> count
    held: int
    suppressed: int
    raised_after_hold: int


def _beyond_since(r: Replay, alarm_kind: str, at_ms: int, policy: AlarmPolicy) -> int | None:
    """Start of the run of ticks, ending at ``at_ms``, in which the hub's value was beyond the alarm's limit."""
    param, side = _PARAM_OF[alarm_kind]
    lim = policy.for_ward(WARD).limits[param]
    limit = lim.low if side == "low" else lim.high
    if limit is None:
        return None
    v = r.hub_values[param]
    beyond = v < limit if side == "low" else v > limit
    i = int(np.searchsorted(r.tick_ms, at_ms))
    if i >= len(v) or not beyond[i]:
        return None
    while i > 0 and beyond[i - 1]:
        i -= 1
    return int(r.tick_ms[i])


def true_pause_s(ep: Episode, lab: Label) -> tuple[float, float | None]:
    """The longest interval between two true R waves overlapping the label, and when the last R wave before it came (s)."""
    r = np.asarray(ep.r_peaks_s, dtype=float)
    lo, hi = (lab.start_ms - ep.t0_ms) / 1000.0, (lab.end_ms - ep.t0_ms) / 1000.0
    before = r[r <= lo]
    upto = np.concatenate([before[-1:], r[(r > lo) & (r <= hi + 0.5)]])
    after = r[r > hi + 0.5][:1]
    beats = np.concatenate([upto, after])
    if len(beats) < 2:
        return 0.0, float(before[-1]) if len(before) else None
    return float(np.diff(beats).max()), float(before[-1]) if len(before) else None


def alarmable(ep: Episode, lab: Label, alarm_kind: str, policy: AlarmPolicy) -> bool:
    """Does the truth (``true_hr``/``true_spo2``, not what the monitor shows) stay beyond the alarm's limit for at least
    its persistence delay inside the label? An event that does not (a "bradycardia" at 41/min against a limit of 40)
    is not one the policy asks to be alarmed, before or after. An asystole is also alarmable when the policy's asystole
    alarm is on and the true pause is at least its ``pause_s``."""
    rule = policy.for_ward(WARD).asystole
    if lab.kind == "asystole" and rule.enabled and true_pause_s(ep, lab)[0] >= rule.pause_s:
        return True
    param, side = _PARAM_OF[alarm_kind]
    lim = policy.for_ward(WARD).limits[param]
    limit = lim.low if side == "low" else lim.high
    if limit is None:
        return False
    t = np.asarray(ep.numerics_t_ms)
    v = np.asarray(ep.numerics[f"true_{param}"], dtype=float)[(t >= lab.start_ms) & (t <= lab.end_ms)]
    run = longest = 0
    for beyond in (v < limit) if side == "low" else (v > limit):
        run = run + 1 if beyond else 0
        longest = max(longest, run)
    return longest >= lim.delay_s


def score(ep: Episode, replays: dict[str, Replay], policy: AlarmPolicy) -> EpisodeScore:
    """One episode's true events and false alarms in each mode."""
    true_windows = []
    outcomes: list[EventOutcome] = []
    for lab in ep.labels:
        if not lab.true_event:
            continue
        want = EVENT_ALARM[lab.kind]
        hi = lab.end_ms + int(grace_s(policy, want) * 1000)
        true_windows.append((lab.start_ms, hi))
        kinds = (want, *ALSO_DETECTS.get(lab.kind, ()))
        detected, at, delay, engine_delay, any_alarm, by, from_beat = {}, {}, {}, {}, {}, {}, {}
        last_beat = true_pause_s(ep, lab)[1] if lab.kind == "asystole" else None
        prio = None
        for mode, r in replays.items():
            hit = next((a for a in r.raised if a.kind in kinds and lab.start_ms <= a.at_ms <= hi), None)
            detected[mode] = hit is not None
            by[mode] = hit.kind if hit else None
            from_beat[mode] = round((hit.at_ms - ep.t0_ms) / 1000 - last_beat, 2) if hit and last_beat is not None else None
            any_alarm[mode] = any(a.category == PHYSIOLOGICAL and lab.start_ms <= a.at_ms <= hi for a in r.raised)
            at[mode] = hit.at_ms if hit else None
            delay[mode] = (hit.at_ms - lab.start_ms) / 1000 if hit else None
            since = _beyond_since(r, hit.kind, hit.at_ms, policy) if hit and hit.kind in _PARAM_OF else None
            engine_delay[mode] = (hit.at_ms - since) / 1000 if hit and since is not None else None
            if mode == AFTER and hit:
                prio = hit.priority
        outcomes.append(EventOutcome(lab.kind, alarmable(ep, lab, want, policy), detected, at, delay, engine_delay, prio, any_alarm,
                                     by, from_beat))  # fmt: skip
    false_alarms, false_gated, by_kind = {}, {}, {}
    for mode, r in replays.items():
        fa = [a for a in r.raised if a.category == PHYSIOLOGICAL and not any(lo <= a.at_ms <= hi for lo, hi in true_windows)]
        false_alarms[mode] = len(fa)
        false_gated[mode] = sum(a.kind in _PARAM_OF for a in fa)
        counts: dict[str, int] = {}
        for a in fa:
            counts[a.kind] = counts.get(a.kind, 0) + 1
        by_kind[mode] = counts
    after = replays.get(AFTER)
    holds = after.holds if after else ()
    return EpisodeScore(
        ep.kind, ep.seed, ep.duration_s / 3600.0, tuple(outcomes), false_alarms, false_gated, by_kind,
        held=sum(h.event == "held" for h in holds), suppressed=sum(h.event == "suppressed" for h in holds),
        raised_after_hold=sum(h.event == "raised" for h in holds),
    )  # fmt: skip


def evaluate_episode(ep: Episode, policy: AlarmPolicy, tables: ScoreTables, *, staleness_s: float = 30.0) -> EpisodeScore:
    """Replay ``ep`` before and after, and score it."""
    return score(ep, {m: replay(ep, policy, tables, m, staleness_s=staleness_s) for m in MODES}, policy)


def _pct(xs: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(xs, q)), 2) if len(xs) else None


def summarise(scores: Iterable[EpisodeScore]) -> dict:
    """Per episode kind and in total: episodes, sensitivity, false alarms per bed-hour, added delay p50/p95, holds."""
    scores = list(scores)
    rows: dict[str, dict] = {}
    for group in [*KINDS, "total"]:
        mine = [s for s in scores if group == "total" or s.kind == group]
        if not mine:
            continue
        hours = sum(s.hours for s in mine)
        events = [e for s in mine for e in s.events]
        row: dict = {"episodes": len(mine), "bed_hours": round(hours, 3), "events": len(events)}
        for mode in MODES:
            n_det = sum(e.detected[mode] for e in events)
            row[f"sensitivity_{mode}"] = round(n_det / len(events), 4) if events else None
            row[f"missed_{mode}"] = len(events) - n_det
            fa = sum(s.false_alarms[mode] for s in mine)
            row[f"false_alarms_{mode}"] = fa
            row[f"false_per_bed_hour_{mode}"] = round(fa / hours, 2) if hours else None
            row[f"false_gated_{mode}"] = sum(s.false_gated[mode] for s in mine)
        both = [e for e in events if e.detected[BEFORE] and e.detected[AFTER]]
        added = [e.delay_s[AFTER] - e.delay_s[BEFORE] for e in both]  # type: ignore[operator]
        row["added_delay_p50_s"], row["added_delay_p95_s"] = _pct(added, 50), _pct(added, 95)
        row["added_delay_max_s"] = round(max(added), 2) if added else None
        eng = [e.engine_delay_s[AFTER] for e in events if e.engine_delay_s.get(AFTER) is not None]
        row["engine_delay_after_max_s"] = round(max(eng), 2) if eng else None  # type: ignore[type-var]
        fb = [e.from_last_beat_s[AFTER] for e in events if e.from_last_beat_s.get(AFTER) is not None]
        row["from_last_beat_after_max_s"] = round(max(fb), 2) if fb else None  # type: ignore[type-var]
        row["detected_by_after"] = {k: sum(e.detected_by.get(AFTER) == k for e in events) for k in sorted({e.detected_by.get(AFTER) for e in events} - {None})}  # type: ignore[type-var]
        alarmable_events = [e for e in events if e.alarmable]
        row["alarmable_events"] = len(alarmable_events)
        for mode in MODES:
            n_det = sum(e.detected[mode] for e in alarmable_events)
            row[f"sensitivity_alarmable_{mode}"] = round(n_det / len(alarmable_events), 4) if alarmable_events else None
        row["lost_after"] = sum(e.detected[BEFORE] and not e.detected[AFTER] for e in events)
        row["any_alarm_lost_after"] = sum(e.any_alarm[BEFORE] and not e.any_alarm[AFTER] for e in events)
        high = [e for e in events if e.kind in HIGH_PRIORITY_EVENTS]
        row["high_priority_events"] = len(high)
        row["high_priority_missed_after"] = sum(not e.detected[AFTER] for e in high)
        row["high_priority_alarmable"] = sum(e.alarmable for e in high)
        row["high_priority_alarmable_missed_after"] = sum(e.alarmable and not e.detected[AFTER] for e in high)
        row["held"] = sum(s.held for s in mine)
        row["suppressed"] = sum(s.suppressed for s in mine)
        row["raised_after_hold"] = sum(s.raised_after_hold for s in mine)
        fbk: dict[str, dict[str, int]] = {}
        for mode in MODES:
            for s in mine:
                for k, c in s.false_by_kind[mode].items():
                    fbk.setdefault(k, {m: 0 for m in MODES})[mode] += c
        row["false_by_alarm_kind"] = fbk
        rows[group] = row
    return rows


def is_event(kind: str) -> bool:
    return kind in EVENT_KINDS
