"""Artefact-aware alarming: heart-rate and SpO2 limit alarms weighed against the waveforms' signal quality.

The hub's signal-processing worker reports each analysed lead's quality
(``alerts.lead_quality.LeadQuality``); the engine hands it here. When a limit
condition comes on (after its persistence delay):

- **Heart rate** (``limit:hr_low``, ``limit:hr_high``): raised at once when the
  ECG is good, or when a good pleth shows a pulse rate that confirms it (within
  ``pleth_tolerance_bpm`` of the HR, or beyond the same limit). It is **held**
  as possible artefact only when the ECG is poor *and* a good pleth shows a pulse
  rate that disagrees: a poor ECG with no good pleth to check it against (flat,
  poor or none) goes ahead, since a flat ECG and no pulse may be asystole (the
  labelled evaluation found such alarms held and then suppressed).
- **SpO2** (``limit:spo2_low``): raised at once unless the pleth is poor; then held.
- **Scores and trends** (``SCORE_GATED``: NEWS2, MEWS, NEWS2 rising, SpO2
  falling): held while a reading they are computed from is suspect as above and
  scores, unless the sound readings alone make a NEWS2 alarm; for at most that
  reading's limit delay plus hold (``score_hold_s``), never later than the limit
  alarm on the same reading could be. NEWS2 has no persistence delay, so without
  this a second of artefactual HR or SpO2 raised a NEWS2 alarm.
- A held condition is raised the moment its reason goes (ECG good again, pleth
  confirms, quality no longer known), or when its hold time runs out
  (``ecg_hold_s``/``spo2_hold_s``; the policy keeps delay plus hold within the
  IEC 60601-2-27 limit for heart rate). If the condition ends within the hold it
  is **suppressed**: never raised, but audited.
- A bed with no fresh quality for the lead (no waveform, or older than
  ``stale_s``) alarms exactly as it would without this module.

Poor quality lasting ``poor_ecg_s``/``poor_pleth_s`` raises a low-priority
technical alarm (``technical:ecg_poor`` "check ECG leads", ``technical:pleth_poor``
"check SpO2 probe"), which clears when the quality is good again (or no longer known).

Every hold is an audited alarm event (``held``, then ``raised`` or ``suppressed``)
with its reason as the note. Python runs only for beds with a limit condition
on or a lead reported; the tick's vectorised passes are untouched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from alerts.kinds import ECG_POOR, HR_HIGH, HR_LOW, MEWS, NEWS2, NEWS2_RISE, PLETH_POOR, SPO2_FALL, SPO2_LOW, family_of
from alerts.lead_quality import ECG, PLETH, SIGNALS, LeadQuality
from alerts.lifecycle import RESOLVED, AlarmBook, Alert, AlertEvent, Condition
from alerts.limits import LimitTracker
from alerts.policy import ArtefactRules, WardPolicy
from wire.vocabulary import COLUMN

GATED = frozenset({HR_LOW, HR_HIGH, SPO2_LOW})
#: score and trend alarms held while a reading they are computed from looks like artefact, and which readings those are
SCORE_GATED: dict[str, tuple[str, ...]] = {NEWS2: ("hr", "spo2"), MEWS: ("hr",), NEWS2_RISE: ("hr", "spo2"), SPO2_FALL: ("spo2",)}


@dataclass(slots=True)
class Hold:
    alert: Alert  # the provisional alarm (state "held"), raised under the same id if the condition outlasts the hold
    until: int  # ms: when the hold ends at the latest


def score_hold_s(pol: WardPolicy, param: str) -> float:
    """The longest hold of a score or trend alarm computed from a suspect ``param`` ("hr" or "spo2"): that
    parameter's limit persistence delay plus its artefact hold, the latest its own limit alarm may come."""
    hold = pol.artefact.ecg_hold_s if param == "hr" else pol.artefact.spo2_hold_s
    lim = pol.limits.get(param)
    return (lim.delay_s if lim is not None else 0.0) + hold


class ArtefactGate:
    """Latest lead qualities per bed, the holds in progress, and the counters of what was held."""

    def __init__(self) -> None:
        self.quality: dict[tuple[str, str], LeadQuality] = {}  # (bed, "ecg" | "pleth") -> latest verdict
        self.holds: dict[tuple[str, str], Hold] = {}  # (bed, kind) -> hold in progress
        self.poor_since: dict[tuple[str, str], int] = {}  # (bed, signal) -> end of the first poor window of the run
        self.counters: Counter[str] = Counter()  # held, suppressed, raised_after_hold, hold_ended

    def set_quality(self, bed: str, q: LeadQuality) -> None:
        """Record a lead's latest quality (one dict assignment: safe to call from the worker's thread)."""
        if q.signal not in SIGNALS:
            raise ValueError(f"unknown signal {q.signal!r}: expected one of {', '.join(SIGNALS)}")
        self.quality[(bed, q.signal)] = q

    def forget(self, bed: str) -> None:
        """The bed's waveforms are gone for good (discharged, removed): drop its qualities."""
        for s in SIGNALS:
            self.quality.pop((bed, s), None)
            self.poor_since.pop((bed, s), None)

    def fresh(self, bed: str, signal: str, now: int, rules: ArtefactRules) -> LeadQuality | None:
        q = self.quality.get((bed, signal))
        return q if q is not None and now - q.t_end <= rules.stale_s * 1000 else None

    # --- holding limit alarms ------------------------------------------------------------

    def suspect_hr(self, bed: str, value: float, now: int, rules: ArtefactRules) -> str | None:
        """Why ``bed``'s heart rate ``value`` looks like artefact, or None: only when the ECG is poor *and* a good
        pleth shows a pulse rate that disagrees (beyond ``pleth_tolerance_bpm``). A poor ECG with no good pleth to
        check it against is no evidence of artefact: a flat ECG and no pulse may be asystole."""
        ecg = self.fresh(bed, ECG, now, rules)
        if ecg is None or ecg.good:
            return None
        pleth = self.fresh(bed, PLETH, now, rules)
        if pleth is None or not pleth.good or pleth.rate is None:
            return None
        if not np.isnan(value) and abs(pleth.rate - value) <= rules.pleth_tolerance_bpm:
            return None
        shown = "—" if np.isnan(value) else f"{value:.0f}"
        return f"{ecg.reason or 'ECG signal poor'}; pleth pulse {pleth.rate:.0f}/min disagrees with HR {shown}"

    def suspect_spo2(self, bed: str, now: int, rules: ArtefactRules) -> str | None:
        """Why ``bed``'s SpO2 looks like artefact (the pleth is poor), or None."""
        pleth = self.fresh(bed, PLETH, now, rules)
        return None if pleth is None or pleth.good else (pleth.reason or "pleth signal poor")

    def verdict(self, bed: str, kind: str, value: float, limit: float, now: int, rules: ArtefactRules) -> tuple[bool, str]:
        """(hold?, why in words) for a gated limit condition on ``bed`` with reading ``value`` against ``limit``."""
        if not rules.enabled:
            return False, "artefact checks are off"
        if kind == SPO2_LOW:
            pleth = self.fresh(bed, PLETH, now, rules)
            if pleth is None:
                return False, "no pleth quality known"
            if pleth.good:
                return False, "pleth signal good"
            return rules.spo2_hold_s > 0, f"possible artefact: {pleth.reason or 'pleth signal poor'}"
        ecg = self.fresh(bed, ECG, now, rules)
        if ecg is None:
            return False, "no ECG quality known"
        if ecg.good:
            return False, "ECG signal good"
        pleth = self.fresh(bed, PLETH, now, rules)
        if pleth is None or not pleth.good or pleth.rate is None:
            return False, "ECG poor but no good pleth pulse to check it against (a flat ECG without a pulse may be asystole)"
        if pleth.rate < limit if kind == HR_LOW else pleth.rate > limit:
            return False, f"pleth pulse {pleth.rate:.0f}/min confirms it"
        why = self.suspect_hr(bed, value, now, rules)
        if why is None:
            return False, f"pleth pulse {pleth.rate:.0f}/min confirms it"
        return rules.ecg_hold_s > 0, f"possible artefact: {why}"

    def score_verdict(self, bed: str, kind: str, inputs: np.ndarray, i: int, now: int, pol: WardPolicy,
                      sub: dict[str, float] | None = None, news2_medium: int | None = None) -> tuple[bool, float, str]:  # fmt: skip
        """(hold?, longest hold in s, why) for a score or trend alarm (``SCORE_GATED``) that would be raised on ``bed``
        (row ``i`` of ``inputs``): held while a reading it is computed from looks like artefact *and* the alarm depends
        on that reading. With the score's sub-scores ``sub`` (component -> sub-score), a suspect reading scoring 0
        holds nothing, and a NEWS2 alarm that the sound readings make on their own (one of them scores 3, or they sum
        to ``news2_medium``) is not held: a flat pleth beside an HR of 0 is no reason to hold the NEWS2 alarm of an
        asystole. The longest hold is the limit alarm's on that reading, persistence delay plus hold (``score_hold_s``):
        a score alarm on a suspect reading is never later than the limit alarm on the same reading may be (10 s for
        HR, IEC 60601-2-27)."""
        rules = pol.artefact
        if not rules.enabled:
            return False, 0.0, "artefact checks are off"
        whys, hold_s = [], 0.0
        if "hr" in SCORE_GATED[kind]:
            why = self.suspect_hr(bed, float(inputs[i, COLUMN["hr"]]), now, rules)
            if why is not None and rules.ecg_hold_s > 0:
                whys.append(f"heart rate: {why}")
                hold_s = max(hold_s, score_hold_s(pol, "hr"))
        if "spo2" in SCORE_GATED[kind]:
            why = self.suspect_spo2(bed, now, rules)
            if why is not None and rules.spo2_hold_s > 0:
                whys.append(f"SpO2: {why}")
                hold_s = max(hold_s, score_hold_s(pol, "spo2"))
        if not whys:
            return False, 0.0, "its readings look sound"
        if sub is not None:
            suspect = {"hr"} if any(w.startswith("heart rate") for w in whys) else set()
            suspect |= {"spo2"} if any(w.startswith("SpO2") for w in whys) else set()
            if not any(sub.get(c, 0.0) > 0 for c in suspect):
                return False, 0.0, "the readings that look like artefact do not score"
            sound = [v for c, v in sub.items() if c not in suspect and np.isfinite(v)]
            if kind == NEWS2 and (any(v >= 3 for v in sound) or (news2_medium is not None and sum(sound) >= news2_medium)):
                return False, 0.0, "the sound readings alone make the alarm"
        return True, hold_s, "possible artefact in the readings it scores: " + "; ".join(whys)

    def gate(
        self, now: int, conds: dict[tuple[str, str], Condition], book: AlarmBook, rows: dict[str, int], policies: Sequence[WardPolicy],
        inputs: np.ndarray, limits: LimitTracker | None = None, family: str | None = None,
        subscores: dict[str, tuple[tuple[str, ...], np.ndarray]] | None = None, news2_medium: int | None = None,
    ) -> list[AlertEvent]:  # fmt: skip
        """Take held conditions out of ``conds`` (one family's, before it is reconciled: the limit family with
        ``limits``, or the score or trend ``family`` of ``SCORE_GATED`` kinds, with ``subscores``: kind -> (components,
        per-bed sub-scores) of the score it is computed from); returns the hold events."""
        events: list[AlertEvent] = []
        gated = GATED if family is None else frozenset(k for k in SCORE_GATED if family_of(k) == family)
        if (limits is None) == (family is None) or not gated:
            raise ValueError("gate one family: the limit family (with its LimitTracker) or a family of SCORE_GATED kinds")
        present = {k for k in conds if k[1] in gated}
        for key, cond in list(conds.items()):
            if key[1] not in gated or key in book.open:
                continue  # not checked against quality, or already raised: an open alarm is never held back
            i = rows.get(cond.bed)
            if i is None:
                continue
            rules = policies[i].artefact
            if limits is None:
                sc = (subscores or {}).get(key[1])
                sub = dict(zip(sc[0], sc[1][i].tolist(), strict=True)) if sc is not None else None
                hold, hold_s, why = self.score_verdict(cond.bed, key[1], inputs, i, now, policies[i], sub, news2_medium)
            else:
                param, side = ("spo2", "lo") if key[1] == SPO2_LOW else ("hr", "lo" if key[1] == HR_LOW else "hi")
                j = limits.params.index(param)
                limit = float((limits.lo if side == "lo" else limits.hi)[i, j])
                hold, why = self.verdict(cond.bed, key[1], float(inputs[i, COLUMN[param]]), limit, now, rules)
                hold_s = self._hold_s(key[1], rules)
            h = self.holds.get(key)
            if h is None:
                if hold:
                    alert = book.held(cond, now, why)
                    self.holds[key] = Hold(alert, now + int(hold_s * 1000))
                    self.counters["held"] += 1
                    events.append(AlertEvent("held", alert, note=why))
                    del conds[key]
                continue
            if hold and now < h.until:
                del conds[key]  # still held
                continue
            del self.holds[key]
            secs = (now - (h.alert.held_since or now)) / 1000
            note = (f"raised after a {secs:g} s hold: {why}" if not hold else
                    f"raised after a {secs:g} s hold, the longest allowed: the condition persists ({why})")  # fmt: skip
            self.counters["raised_after_hold"] += 1
            events.append(book.raise_held(h.alert, cond, now, note))
        for key in [k for k in self.holds if k[1] in gated and k not in present]:
            a = self.holds.pop(key).alert
            secs = (now - (a.held_since or now)) / 1000
            a.state, a.condition, a.resolved_at, a.updated = RESOLVED, False, now, now
            self.counters["suppressed"] += 1
            events.append(AlertEvent("suppressed", a, note=f"not raised: the condition ended {secs:g} s into its hold ({a.hold_reason})"))
        while book.interrupted_holds:
            a = book.interrupted_holds.pop()
            a.state, a.condition, a.resolved_at, a.updated = RESOLVED, False, now, now
            self.counters["hold_ended"] += 1
            events.append(AlertEvent("hold_ended", a, note="the hub restarted during the hold; the condition is judged afresh"))
        return events

    @staticmethod
    def _hold_s(kind: str, rules: ArtefactRules) -> float:
        return rules.spo2_hold_s if kind == SPO2_LOW else rules.ecg_hold_s

    # --- poor quality that lasts -----------------------------------------------------------

    def technical_conditions(self, now: int, rows: dict[str, int], wards: Sequence[str], policies: Sequence[WardPolicy]) -> dict[tuple[str, str], Condition]:
        """``technical:ecg_poor`` / ``technical:pleth_poor`` for leads poor for their configured time."""
        out: dict[tuple[str, str], Condition] = {}
        for (bed, signal), q in list(self.quality.items()):
            key = (bed, signal)
            i = rows.get(bed)
            rules = policies[i].artefact if i is not None else None
            if rules is None or not rules.enabled or q.good or now - q.t_end > rules.stale_s * 1000:
                self.poor_since.pop(key, None)
                continue
            since = self.poor_since.setdefault(key, q.t_end)
            need_s = rules.poor_ecg_s if signal == ECG else rules.poor_pleth_s
            if now - since < need_s * 1000:
                continue
            pol, ward, mins = policies[i], wards[i], (now - since) // 1000
            if signal == ECG:
                kind, title = ECG_POOR, f"Check ECG leads: {q.reason or 'poor ECG signal'}"
                detail = (f"the ECG has been of poor quality for {mins} s; heart-rate alarms may be held up to {rules.ecg_hold_s:g} s "
                          "as possible artefact until it is good again: check the electrodes and leads")  # fmt: skip
            else:
                kind, title = PLETH_POOR, f"Check SpO2 probe: {q.reason or 'poor pleth signal'}"
                detail = (f"the pleth has been of poor quality for {mins} s; SpO2 alarms may be held up to {rules.spo2_hold_s:g} s "
                          "as possible artefact until it is good again: check the probe's position and the hand's warmth")  # fmt: skip
            what = kind.split(":", 1)[1]
            out[(bed, kind)] = Condition(bed, bed, ward, kind, pol.technical_priority[what], title, detail, "technical")
        return out

    def stats(self) -> dict[str, int]:
        return {**{k: self.counters[k] for k in ("held", "suppressed", "raised_after_hold", "hold_ended")},
                "holding": len(self.holds), "leads_reported": len(self.quality)}  # fmt: skip
