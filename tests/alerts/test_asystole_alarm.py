"""The asystole alarm through the real waveform analysis, alarm engine and default policy.

A synthetic heart (``waveform_support.heart_with_pause``) is analysed every 2 s
over its last 10 s, as the hub's signal worker does, and fed to the engine,
which is ticked every second. The default policy: asystole after 4 s without a
QRS and without a pulse, high priority, latching; HR-low after 6 s (which a
pause of under ~10 s never reaches: the monitor's HR is still counting).
"""

from __future__ import annotations

import numpy as np
import pytest
from config_support import alarm_policy, default_raw, score_tables
from waveform_support import ECG_FS, PLETH_FS, heart_with_pause

from alerts.engine import AlarmEngine
from alerts.kinds import ASYSTOLE
from alerts.lifecycle import AlarmBook, AlertEvent
from alerts.policy import WAVEFORM_CADENCE_S, PolicyError, parse_policy
from alerts.scoring import score_beds
from alerts.technical import TechnicalView
from alerts.waveforms.quality import CADENCE_S, WINDOW_S, analyse_ecg, analyse_pleth
from ingest.waveform_quality import CADENCE_S as HUB_CADENCE_S
from wire.vocabulary import COLUMN, PARAMETERS, Flag

S = 1000
T0 = 1_800_000_000_000
BED = "A-01"
NORMAL = {"hr": 75, "pr": 75, "spo2": 97, "rr": 16, "nibp_sys": 120, "temp": 37.0, "o2": 0, "acvpu": 0}


class Bed:
    """One bed of ward A whose ECG (and pleth, unless None) the engine hears about every 2 s."""

    def __init__(self, ecg: np.ndarray, pleth: np.ndarray | None, policy=None, hr_flags: int = 0) -> None:
        self.ecg, self.pleth = ecg, pleth
        self.book = AlarmBook()
        self.engine = AlarmEngine(policy or alarm_policy(), self.book, score_tables())
        self.values = np.full((1, len(PARAMETERS)), np.nan)
        for k, v in NORMAL.items():
            self.values[0, COLUMN[k]] = v
        self.flags = np.zeros((1, len(PARAMETERS)), dtype=np.int16)
        self.flags[0, COLUMN["hr"]] = hr_flags
        self.log: list[tuple[float, AlertEvent]] = []

    def run(self, start: int, end: int, analyse_until: float = np.inf) -> None:
        for t in range(start, end + 1):
            now = T0 + t * S
            if WINDOW_S <= t <= analyse_until and t % int(CADENCE_S) == 0:
                e = self.ecg[int((t - WINDOW_S) * ECG_FS) : int(t * ECG_FS)]
                self.engine.set_lead_quality(BED, analyse_ecg(e, ECG_FS, now))
                if self.pleth is not None:
                    p = self.pleth[int((t - WINDOW_S) * PLETH_FS) : int(t * PLETH_FS)]
                    self.engine.set_lead_quality(BED, analyse_pleth(p, PLETH_FS, now))
            view = TechnicalView(now=now, beds=[BED], wards=["A"], agents=["e1"], last_rx=np.full(1, now), watched_since=np.full(1, T0),
                                 flags=self.flags, agents_offline={}, store_error=None)  # fmt: skip
            sc = score_beds(self.values.copy(), np.zeros(1, dtype=bool), score_tables())
            self.log += [(float(t), ev) for ev in self.engine.evaluate(now, [BED], ["A"], sc, view)]

    def events(self, kind: str = ASYSTOLE) -> list[tuple[float, str]]:
        return [(t, e.event) for t, e in self.log if e.alert.kind == kind and e.event != "regrouped"]

    def raised_at(self) -> float:
        return next(t for t, ev in self.events() if ev == "raised")


def test_a_true_asystole_with_a_flat_pleth_alarms_within_one_round_and_clears_when_beats_return() -> None:
    ecg, pleth, r = heart_with_pause(75.0, 50.0, (20.0, 31.0))
    last = float(r[r < 20.0][-1])
    bed = Bed(ecg, pleth)
    bed.run(0, 45)
    at = bed.raised_at()
    assert last + 4.0 <= at <= last + 4.0 + WAVEFORM_CADENCE_S  # within one analysis round of 4 s without a QRS
    assert at - last <= 10.0  # IEC 60601-2-27
    a = next(e.alert for t, e in bed.log if e.alert.kind == ASYSTOLE)
    assert a.priority == "high" and a.category == "physiological" and "no QRS" in a.detail
    # beats return at 31 s: the condition clears at the first round that sees a beat; the alarm latches until acknowledged
    assert [ev for _, ev in bed.events()] == ["raised", "cleared"]
    cleared = next(t for t, ev in bed.events() if ev == "cleared")
    assert 31.0 < cleared <= 31.0 + 1.0 + WAVEFORM_CADENCE_S
    assert (BED, ASYSTOLE) in bed.book.open
    bed.log += [(46.0, e) for e in bed.book.acknowledge(a.id, "nurse", T0 + 46 * S)]
    assert bed.events()[-1] == (46.0, "resolved") and (BED, ASYSTOLE) not in bed.book.open
    # the HR-low limit (6 s on a monitor HR that stays 75 here) raised nothing: the asystole alarm did not wait for it
    assert bed.events("limit:hr_low") == []


def test_an_asystole_acknowledged_while_it_lasts_resolves_when_beats_return() -> None:
    ecg, pleth, _ = heart_with_pause(75.0, 50.0, (20.0, 33.0))
    bed = Bed(ecg, pleth)
    bed.run(0, 27)
    a = bed.book.open[(BED, ASYSTOLE)]
    bed.book.acknowledge(a.id, "nurse", T0 + 27 * S)
    bed.run(28, 45)
    assert [ev for _, ev in bed.events()] == ["raised", "resolved"]


def test_leads_off_with_the_pleth_still_pulsing_raises_no_asystole() -> None:
    ecg, _, _ = heart_with_pause(75.0, 60.0, (20.0, 60.0))  # the ECG goes flat at 20 s ...
    _, pleth, _ = heart_with_pause(75.0, 60.0)  # ... while the pleth pulses on: leads off
    bed = Bed(ecg, pleth)
    bed.run(0, 60)
    assert bed.events() == []
    assert ("A-01", "technical:ecg_poor") in bed.book.open  # what the nurse hears instead: "Check ECG leads"


def test_a_short_pause_raises_nothing() -> None:
    ecg, pleth, r = heart_with_pause(75.0, 45.0, (20.0, 22.2))  # about 3 s from one R wave to the next
    gap = float(np.diff(r).max())
    assert 2.8 <= gap < 3.5
    bed = Bed(ecg, pleth)
    bed.run(0, 45)
    assert bed.events() == []


def test_without_a_pleth_a_flat_ecg_alarms_unless_the_monitor_says_the_leads_are_off() -> None:
    ecg, _, _ = heart_with_pause(75.0, 40.0, (20.0, 40.0))
    bed = Bed(ecg, None)
    bed.run(0, 30)
    assert bed.events()[:1] == [(bed.raised_at(), "raised")] and bed.raised_at() <= 26.0
    flagged = Bed(ecg, None, hr_flags=int(Flag.LEADS_OFF))
    flagged.run(0, 30)
    assert flagged.events() == []


def test_a_stale_ecg_is_no_evidence_that_the_asystole_ended() -> None:
    ecg, pleth, _ = heart_with_pause(75.0, 60.0, (20.0, 60.0))
    bed = Bed(ecg, pleth)
    bed.run(0, 50, analyse_until=28)  # the waveforms stop arriving after 28 s (stale after 10 s)
    assert [ev for _, ev in bed.events()] == ["raised"]
    assert bed.book.open[(BED, ASYSTOLE)].condition


def test_the_rule_can_be_turned_off_and_its_pause_is_checked() -> None:
    raw = default_raw("alarms.yaml")
    raw["defaults"]["arrhythmia"]["asystole"]["enabled"] = False
    ecg, pleth, _ = heart_with_pause(75.0, 45.0, (20.0, 40.0))
    bed = Bed(ecg, pleth, policy=parse_policy(raw))
    bed.run(0, 40)
    assert bed.events() == []
    for bad in (2.5, 8.5):  # under 3 s is a pause, not an asystole; over 8 s the alarm could come later than IEC's 10 s
        raw = default_raw("alarms.yaml")
        raw["defaults"]["arrhythmia"]["asystole"]["pause_s"] = bad
        with pytest.raises(PolicyError, match="arrhythmia.asystole.pause_s"):
            parse_policy(raw)


def test_the_policy_knows_the_analysis_cadence() -> None:
    assert WAVEFORM_CADENCE_S == CADENCE_S == HUB_CADENCE_S
