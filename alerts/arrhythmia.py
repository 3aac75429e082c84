"""The asystole alarm: no QRS on the analysed ECG and no pulse on the pleth, raised within one analysis round.

A bedside monitor's heart rate shows 0 only after some seconds without a beat,
and the HR-low limit then waits its own persistence delay, so a pause of 7-9 s
ends before any HR alarm. This rule reads the hub's waveform analysis instead
(``alerts.waveforms.quality``, every 2 s over the last 10 s; the verdicts are
kept by ``alerts.artefact.ArtefactGate``):

- **Condition** (``arrhythmia:asystole``, high priority): the ECG's latest
  verdict is fresh (``artefact.stale_s``) and its ``since_last_beat_s`` (no QRS of
  at least 0.15 mV) is at least ``arrhythmia.asystole.pause_s`` (4 s: "no QRS for
  at least 4 seconds", PhysioNet/CinC Challenge 2015, Clifford et al.; the usual
  monitor default), **and** the pleth does not show a pulse in that time: no
  fresh pleth verdict, or one that is not good, or a good one whose last pulse is
  ``pause_s`` or longer ago. No persistence delay: the alarm comes with the first
  analysis that sees the pause, at most one round (2 s) after it reached
  ``pause_s``; the policy keeps ``pause_s`` plus that round within the 10 s of
  IEC 60601-2-27.
- **Artefact, no alarm**: a good pleth still pulsing means the heart beats; the
  flat or quiet ECG is then leads off or a lost signal ("Check ECG leads",
  ``technical:ecg_poor``, and the monitor's ``technical:leads_off`` say so).
  When the monitor flags the ECG heart rate as leads off (or invalid) and there
  is no fresh pleth to check against, no asystole is raised either:
  ``technical:leads_off`` covers it. A pleth that is flat, disturbed or weak does
  not stand in the way: it cannot show that the heart beats.
- **Clearing**: the condition goes when a fresh ECG shows a beat within
  ``pause_s`` or a good pleth pulses again; the alarm then follows its family's
  lifecycle (``latching.arrhythmia``: by default it latches until acknowledged).
  A stale ECG verdict is no evidence of beats: an open asystole alarm keeps its
  condition until the waveforms say otherwise (or the bed's waveforms are forgotten).

Python runs only for beds with an analysed ECG or an open asystole alarm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alerts.artefact import ArtefactGate
from alerts.kinds import ASYSTOLE, PHYSIOLOGICAL, kind
from alerts.lead_quality import ECG, PLETH, LeadQuality
from alerts.lifecycle import Alert, Condition
from alerts.policy import WardPolicy
from wire.vocabulary import COLUMN, Flag

FAMILY = "arrhythmia"
_HR = COLUMN["hr"]
_LEADS_OFF = Flag.LEADS_OFF | Flag.INVALID
PRIORITY = kind(ASYSTOLE).priority  # high, whatever the ward: a lethal arrhythmia


def pulsing(pleth: LeadQuality | None, pause_s: float) -> bool:
    """Does this (fresh) pleth verdict show the heart beating: a good pleth whose last pulse is under ``pause_s`` old?"""
    return pleth is not None and pleth.good and pleth.indices.get("since_last_pulse_s", np.inf) < pause_s


def asystole_conditions(now: int, gate: ArtefactGate, open_alarms: dict[tuple[str, str], Alert], rows: dict[str, int],
                        wards: Sequence[str], policies: Sequence[WardPolicy], flags: np.ndarray) -> dict[tuple[str, str], Condition]:  # fmt: skip
    """The ``arrhythmia:asystole`` conditions of every bed (see the module docstring); ``flags``: the device flags
    [bed x parameter] of the latest values, rows as in ``rows``."""
    out: dict[tuple[str, str], Condition] = {}
    beds = {bed for (bed, signal) in gate.quality if signal == ECG} | {b for (b, k) in open_alarms if k == ASYSTOLE}
    for bed in beds:
        i = rows.get(bed)
        if i is None:
            continue
        pol = policies[i]
        rule = pol.asystole
        if not rule.enabled:
            continue
        ecg = gate.fresh(bed, ECG, now, pol.artefact)
        pleth = gate.fresh(bed, PLETH, now, pol.artefact)
        is_open = (bed, ASYSTOLE) in open_alarms
        if ecg is None:
            # no fresh ECG verdict: no evidence either way; an open alarm keeps its condition while the lead is known
            if is_open and (bed, ECG) in gate.quality and not pulsing(pleth, rule.pause_s):
                a = open_alarms[(bed, ASYSTOLE)]
                out[(bed, ASYSTOLE)] = Condition(bed, bed, wards[i], ASYSTOLE, PRIORITY, a.title,
                                                 "no ECG analysed for a while: the asystole is not known to be over", PHYSIOLOGICAL)  # fmt: skip
            continue
        since = ecg.indices.get("since_last_beat_s", 0.0)
        if since < rule.pause_s or pulsing(pleth, rule.pause_s):
            continue
        leads_off = i < len(flags) and bool(int(flags[i, _HR]) & _LEADS_OFF)
        if leads_off and pleth is None:
            continue  # the monitor says the leads are off and there is no pulse signal to check: technical:leads_off
        shown = f"{since:g} s" if since < ecg.window_s else f"at least {since:g} s"
        if pleth is None:
            pulse = "no pleth to check for a pulse"
        elif pleth.good:
            pulse = f"no pulse on the pleth for {pleth.indices.get('since_last_pulse_s', 0.0):g} s"
        else:
            pulse = f"the pleth shows no reliable pulse ({pleth.reason or 'poor signal'})"
        why = "; the monitor flags the ECG leads off" if leads_off else ""
        detail = (f"no QRS on the ECG for {shown} (threshold {rule.pause_s:g} s; ECG: {ecg.reason or 'signal good'}); {pulse}{why}. "
                  "Check the patient first, then the leads")  # fmt: skip
        out[(bed, ASYSTOLE)] = Condition(bed, bed, wards[i], ASYSTOLE, PRIORITY, "Asystole: no QRS and no pulse", detail, PHYSIOLOGICAL)
    return out
