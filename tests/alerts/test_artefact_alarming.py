"""Artefact-aware alarming through the real alarm engine and default policy: holds, suppression, technical alarms, audit.

Each test drives ``AlarmEngine.evaluate`` second by second over a few beds with
normal vitals except the ones under test, feeds lead qualities as the
signal-processing worker would (``set_lead_quality``), and checks the events.
The default policy: HR limits 40/140 after 6 s, ECG hold at most 4 s (10 s in
all, IEC 60601-2-27); SpO2 low 88 after 15 s, pleth hold at most 10 s.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from config_support import alarm_policy, default_raw, score_tables

from alerts.engine import AlarmEngine
from alerts.lead_quality import LeadQuality
from alerts.lifecycle import AlarmBook, AlertEvent
from alerts.policy import PolicyError, parse_policy
from alerts.scoring import score_beds
from alerts.stats import alarm_stats
from alerts.technical import TechnicalView
from ingest.audit_writer import AlarmRecord, AuditWriter
from ingest.stores import sqlite_stores
from wire.vocabulary import COLUMN, PARAMETERS

S = 1000
T0 = 1_800_000_000_000
NORMAL = {"hr": 80, "pr": 80, "spo2": 97, "rr": 16, "nibp_sys": 120, "temp": 37.0, "o2": 0, "acvpu": 0}
GOOD_ECG = dict(signal="ecg", window_s=10.0, good=True, sqi=0.95, rate=None, reason="")
POOR_ECG = dict(signal="ecg", window_s=10.0, good=False, sqi=0.2, rate=None, reason="ECG noisy (motion?)")


class Ward:
    """The engine over ``n`` beds of ward A, evaluated at ``T0 + t`` seconds."""

    def __init__(self, n: int = 2, book: AlarmBook | None = None, policy=None) -> None:
        self.beds = [f"A-{i + 1:02d}" for i in range(n)]
        self.engine = AlarmEngine(policy or alarm_policy(), book or AlarmBook(), score_tables())
        self.values = np.full((n, len(PARAMETERS)), np.nan)
        for k, v in NORMAL.items():
            self.values[:, COLUMN[k]] = v
        self.log: list[tuple[int, AlertEvent]] = []

    def set(self, bed: int, **values: float) -> None:
        for k, v in values.items():
            self.values[bed, COLUMN[k]] = v

    def quality(self, bed: int, t: float, *, signal: str = "ecg", good: bool, rate: float | None = None, reason: str = "") -> None:
        q = LeadQuality(signal=signal, t_end=T0 + int(t * S), window_s=10.0, good=good, sqi=0.9 if good else 0.2, rate=rate,
                        indices={"ksqi": 5.0}, reason=reason or ("" if good else f"{signal} noisy (motion?)"))  # fmt: skip
        self.engine.set_lead_quality(self.beds[bed], q)

    def tick(self, t: float) -> list[AlertEvent]:
        now = T0 + int(t * S)
        n = len(self.beds)
        view = TechnicalView(now=now, beds=self.beds, wards=["A"] * n, agents=["e1"] * n, last_rx=np.full(n, now),
                             watched_since=np.full(n, T0), flags=np.zeros((n, len(PARAMETERS)), dtype=np.int16),
                             agents_offline={}, store_error=None)  # fmt: skip
        sc = score_beds(self.values.copy(), np.zeros(n, dtype=bool), score_tables())
        evs = self.engine.evaluate(now, self.beds, ["A"] * n, sc, view)
        self.log += [(now, e) for e in evs]
        return evs

    def run(self, start: float, end: float, every=None) -> None:
        """Ticks every second from ``start`` to ``end`` inclusive; ``every(t)`` first, each second."""
        for t in range(int(start), int(end) + 1):
            if every is not None:
                every(t)
            self.tick(t)

    def events(self, kind: str, bed: int = 0) -> list[tuple[float, str, str | None]]:
        """(seconds, event, note) of one kind on one bed, regrouping left out."""
        return [((at - T0) / S, e.event, e.note) for at, e in self.log
                if e.alert.kind == kind and e.alert.bed == self.beds[bed] and e.event != "regrouped"]  # fmt: skip


def test_a_good_ecg_lets_an_hr_alarm_go_ahead_at_its_usual_delay() -> None:
    w = Ward()
    w.set(0, hr=150)
    w.run(0, 8, lambda t: w.quality(0, t, good=True))
    assert [(t, ev) for t, ev, _ in w.events("limit:hr_high")] == [(6.0, "raised")]


def test_a_poor_ecg_confirmed_by_the_pleth_pulse_goes_ahead_at_once() -> None:
    w = Ward()
    w.set(0, hr=150)

    def feed(t: int) -> None:
        w.quality(0, t, good=False)
        w.quality(0, t, signal="pleth", good=True, rate=146)  # within 10 beats/min of 150

    w.run(0, 8, feed)
    assert [(t, ev) for t, ev, _ in w.events("limit:hr_high")] == [(6.0, "raised")]
    # bradycardia: a pleth pulse beyond the same limit confirms it even when it differs by more than the tolerance
    w2 = Ward()
    w2.set(0, hr=30)
    w2.run(0, 8, lambda t: (w2.quality(0, t, good=False), w2.quality(0, t, signal="pleth", good=True, rate=38)))
    assert [(t, ev) for t, ev, _ in w2.events("limit:hr_low")] == [(6.0, "raised")]


def test_poor_ecg_and_a_disagreeing_pleth_hold_the_alarm_then_raise_it_if_it_persists() -> None:
    w = Ward()
    w.set(0, hr=150)

    def feed(t: int) -> None:
        w.quality(0, t, good=False, reason="ECG noisy (motion?)")
        w.quality(0, t, signal="pleth", good=True, rate=82)

    w.run(0, 12, feed)
    got = w.events("limit:hr_high")
    assert [(t, ev) for t, ev, _ in got] == [(6.0, "held"), (10.0, "raised")]  # 6 s delay + 4 s hold = IEC's 10 s
    assert "possible artefact: ECG noisy (motion?)" in got[0][2] and "pleth pulse 82/min disagrees with HR 150" in got[0][2]
    assert "raised after a 4 s hold, the longest allowed" in got[1][2]
    held = [e for _, e in w.log if e.event == "held" and e.alert.kind == "limit:hr_high"][0].alert
    raised = [e for _, e in w.log if e.event == "raised" and e.alert.kind == "limit:hr_high"][0].alert
    assert held.id == raised.id and raised.held_since == T0 + 6 * S and raised.state == "active"
    assert "ECG noisy" in raised.hold_reason
    # NEWS2 scores that HR 3 (a single parameter scoring 3), with no persistence delay: its alarm is held for the same
    # reason for at most the HR limit's delay plus hold (10 s), so it comes no later than the HR alarm may
    assert [(t, ev) for t, ev, _ in w.events("news2")] == [(0.0, "held"), (10.0, "raised")]
    assert "heart rate: ECG noisy (motion?); pleth pulse 82/min disagrees with HR 150" in w.events("news2")[0][2]
    assert w.engine.artefact_stats() | {} == {"held": 2, "suppressed": 0, "raised_after_hold": 2, "hold_ended": 0, "holding": 0,
                                             "leads_reported": 2}  # fmt: skip
    # the other bed, with no waveform, is untouched
    assert w.events("limit:hr_high", bed=1) == []


def test_a_held_alarm_whose_condition_ends_within_the_hold_is_suppressed_never_raised() -> None:
    w = Ward()
    w.set(0, hr=150)

    def feed(t: int) -> None:
        w.quality(0, t, good=False)
        w.quality(0, t, signal="pleth", good=True, rate=84)
        if t == 8:
            w.set(0, hr=84)  # the "tachycardia" was motion: gone 2 s into the hold

    w.run(0, 30, feed)
    got = w.events("limit:hr_high")
    assert [(t, ev) for t, ev, _ in got] == [(6.0, "held"), (8.0, "suppressed")]
    assert "not raised: the condition ended 2 s into its hold" in got[1][2] and "pleth pulse 84/min disagrees with HR 150" in got[1][2]
    suppressed = [e for _, e in w.log if e.event == "suppressed" and e.alert.kind == "limit:hr_high"][0].alert
    assert suppressed.state == "resolved" and not w.engine.book.open.get((w.beds[0], "limit:hr_high"))
    assert [(t, ev) for t, ev, _ in w.events("news2")] == [(0.0, "held"), (8.0, "suppressed")]  # NEWS2 scored that HR 3
    assert w.engine.artefact_stats()["suppressed"] == 2


def test_an_ecg_good_again_during_the_hold_raises_at_once() -> None:
    w = Ward()
    w.set(0, hr=35)
    w.run(0, 7, lambda t: (w.quality(0, t, good=False), w.quality(0, t, signal="pleth", good=True, rate=72)))
    w.run(8, 9, lambda t: w.quality(0, t, good=True))
    got = w.events("limit:hr_low")
    assert [(t, ev) for t, ev, _ in got] == [(6.0, "held"), (8.0, "raised")]
    assert got[1][2] == "raised after a 2 s hold: ECG signal good"


def test_without_quality_information_or_with_stale_quality_alarms_are_as_before() -> None:
    w = Ward()
    w.set(0, hr=150)
    w.set(1, hr=150)
    w.quality(1, -30, good=False)  # bed 1: one poor verdict, 30 s old at the start (stale after 10 s)
    w.run(0, 8)
    assert [(t, ev) for t, ev, _ in w.events("limit:hr_high", 0)] == [(6.0, "raised")]
    assert [(t, ev) for t, ev, _ in w.events("limit:hr_high", 1)] == [(6.0, "raised")]
    assert w.engine.artefact_stats()["held"] == 0


def test_an_spo2_alarm_with_a_poor_pleth_is_held_and_raised_if_it_persists() -> None:
    w = Ward()
    w.set(0, spo2=84)
    w.run(0, 27, lambda t: w.quality(0, t, signal="pleth", good=False, reason="pleth flat (probe off?)"))
    got = w.events("limit:spo2_low")
    assert [(t, ev) for t, ev, _ in got] == [(15.0, "held"), (25.0, "raised")]
    assert "possible artefact: pleth flat (probe off?)" in got[0][2]
    # a good pleth: no hold
    w2 = Ward()
    w2.set(0, spo2=84)
    w2.run(0, 16, lambda t: w2.quality(0, t, signal="pleth", good=True, rate=80))
    assert [(t, ev) for t, ev, _ in w2.events("limit:spo2_low")] == [(15.0, "raised")]


def test_the_policy_refuses_a_hold_beyond_the_iec_limit() -> None:
    raw = default_raw("alarms.yaml")
    raw["defaults"]["artefact"]["ecg_hold_s"] = 5  # 6 s delay + 5 s hold = 11 s
    with pytest.raises(PolicyError, match=r"artefact\.ecg_hold_s.*11 s, beyond IEC 60601-2-27's limit for heart-rate alarms \(10 s\)"):
        parse_policy(raw)
    raw = default_raw("alarms.yaml")
    raw["wards"] = {"ICU": {"limits": {"hr": {"delay_s": 8}}}}  # a ward's longer delay leaves less room for the hold
    with pytest.raises(PolicyError, match="ICU"):
        parse_policy(raw)
    raw = default_raw("alarms.yaml")
    raw["defaults"]["artefact"]["ecg_hold_s"] = 12
    with pytest.raises(PolicyError, match="ecg_hold_s"):
        parse_policy(raw)
    raw = default_raw("alarms.yaml")
    raw["defaults"]["artefact"]["spo2_hold_s"] = 16  # 15 s + 16 s > 30 s
    with pytest.raises(PolicyError, match="spo2_hold_s"):
        parse_policy(raw)
    # turned off, the limit has nothing to check, and no alarm is ever held
    raw = default_raw("alarms.yaml")
    raw["defaults"]["artefact"]["enabled"] = False
    raw["defaults"]["limits"]["hr"]["delay_s"] = 10
    w = Ward(policy=parse_policy(raw))
    w.set(0, hr=150)
    w.run(0, 11, lambda t: w.quality(0, t, good=False))
    assert [(t, ev) for t, ev, _ in w.events("limit:hr_high")] == [(10.0, "raised")]


def test_poor_quality_that_lasts_raises_a_low_priority_technical_alarm_that_clears() -> None:
    w = Ward()
    w.run(0, 40, lambda t: (w.quality(0, t, good=False, reason="ECG noisy (motion?)"),
                            w.quality(1, t, signal="pleth", good=False, reason="pleth flat (probe off?)")))  # fmt: skip
    ecg = w.events("technical:ecg_poor", 0)
    pleth = w.events("technical:pleth_poor", 1)
    assert [(t, ev) for t, ev, _ in ecg] == [(30.0, "raised")] and [(t, ev) for t, ev, _ in pleth] == [(30.0, "raised")]
    a = w.engine.book.open[(w.beds[0], "technical:ecg_poor")]
    assert a.priority == "low" and a.category == "technical" and a.title == "Check ECG leads: ECG noisy (motion?)"
    assert w.engine.book.open[(w.beds[1], "technical:pleth_poor")].title == "Check SpO2 probe: pleth flat (probe off?)"
    w.run(41, 50, lambda t: (w.quality(0, t, good=True), w.quality(1, t, signal="pleth", good=False)))
    assert [(t, ev) for t, ev, _ in w.events("technical:ecg_poor", 0)] == [(30.0, "raised"), (46.0, "resolved")]  # 5 s clear delay
    assert (w.beds[1], "technical:pleth_poor") in w.engine.book.open
    # a lead no longer reported (stale) is no longer known to be poor: its alarm clears too
    w.run(51, 70)
    assert (w.beds[1], "technical:pleth_poor") not in w.engine.book.open


def test_a_short_poor_spell_raises_no_technical_alarm() -> None:
    w = Ward()
    w.run(0, 60, lambda t: w.quality(0, t, good=(t // 20) % 2 == 1))  # 20 s poor, 20 s good, 20 s poor
    assert w.events("technical:ecg_poor") == []


def test_set_lead_quality_refuses_an_unknown_signal() -> None:
    w = Ward()
    with pytest.raises(ValueError, match="unknown signal 'abp'"):
        w.engine.set_lead_quality("A-01", LeadQuality("abp", T0, 10.0, True, 1.0, 80.0, {}, ""))


def test_every_hold_is_audited_with_its_reason_and_queryable(tmp_path: Path) -> None:
    """The hold's events go through the hub's audit writer into the alarm audit trail (a real SQLite store)."""
    w = Ward()
    w.set(0, hr=150)
    w.set(1, hr=150)

    def feed(t: int) -> None:
        for bed in (0, 1):
            w.quality(bed, t, good=False)
            w.quality(bed, t, signal="pleth", good=True, rate=80)
        if t == 8:
            w.set(1, hr=80)

    async def go() -> tuple[list[dict], list[dict], list[tuple], list[dict]]:
        stores = sqlite_stores(tmp_path / "hub.sqlite3")
        await stores.start()
        try:
            writer = AuditWriter(stores.state, stores.samples, Counter())
            for t in range(13):  # as the hub does: each tick's events go to the writer, which keeps up
                feed(t)
                for ev in w.tick(t):
                    writer.persist(AlarmRecord(ev))
                await writer.flush()
            raised = next(e.alert for _, e in w.log if e.event == "raised" and e.alert.kind == "limit:hr_high")
            gone = next(e.alert for _, e in w.log if e.event == "suppressed" and e.alert.kind == "limit:hr_high")
            return (await stores.state.alert_history(raised.id), await stores.state.alert_history(gone.id),
                    await stores.state.audit_between(T0, T0 + 60 * S), await stores.state.open_alerts())  # fmt: skip
        finally:
            await stores.stop()

    raised_history, suppressed_history, rows, still_open = asyncio.run(go())
    assert [(h["event"], h["at"]) for h in raised_history if h["event"] != "regrouped"] == [("held", T0 + 6 * S), ("raised", T0 + 10 * S)]
    assert "possible artefact" in raised_history[0]["note"] and raised_history[0]["alert"]["state"] == "held"
    assert [h["event"] for h in suppressed_history] == ["held", "suppressed"]
    assert "not raised" in suppressed_history[1]["note"] and suppressed_history[1]["alert"]["state"] == "resolved"
    # both beds' HR limit alarms and their NEWS2 alarms (HR 150 scores 3) were held; bed 1's were suppressed
    assert sorted(e for _, _, e, _ in rows if e in ("held", "suppressed")) == ["held"] * 4 + ["suppressed"] * 2
    assert not [a for a in still_open if a["state"] == "held"]  # nothing stays "held" in the store
    # the quality team's statistics count them from the same audit trail; a suppressed alarm is no alarm raised
    stats = alarm_stats(rows, T0, T0 + 60 * S, 2)
    assert stats["artefact_holds"] == {"held": 4, "suppressed": 2, "raised_after_hold": 2, "hold_ended": 0,
                                       "added_delay_s": {"p50": 7.0, "p95": 9.7}}  # fmt: skip (HR alarm 4 s, NEWS2 10 s)
    assert stats["by_kind_per_bed_per_day"]["limit"] > 0 and stats["alarms"] == len({r[0] for r in rows if r[2] == "raised"})


def test_a_hold_interrupted_by_a_restart_is_ended_not_left_open(tmp_path: Path) -> None:
    w = Ward()
    w.set(0, hr=150)
    w.run(0, 7, lambda t: (w.quality(0, t, good=False), w.quality(0, t, signal="pleth", good=True, rate=80)))
    (held,) = [e.alert for _, e in w.log if e.event == "held" and e.alert.kind == "limit:hr_high"]
    book = AlarmBook()
    book.restore([held.to_json()])  # the hub stopped during the hold; its store still says "held"
    assert not book.open
    w2 = Ward(book=book)
    evs = w2.tick(100)
    (ended,) = [e for e in evs if e.event == "hold_ended"]
    assert ended.alert.id == held.id and ended.alert.state == "resolved" and "restarted" in ended.note


def test_a_poor_ecg_without_a_good_pleth_to_disagree_is_no_reason_to_hold() -> None:
    """Asystole: the ECG is flat (poor) and the pleth has no pulse (poor). Nothing says "artefact", so the HR alarm goes
    ahead at its usual delay; the labelled evaluation found such alarms held and then suppressed when the pause ended."""
    w = Ward()
    w.set(0, hr=0)
    w.set(1, hr=0)
    w.run(0, 8, lambda t: (w.quality(0, t, good=False, reason="ECG flat (leads off?)"),
                           w.quality(0, t, signal="pleth", good=False, reason="pleth flat (probe off?)"),
                           w.quality(1, t, good=False, reason="ECG flat (leads off?)")))  # fmt: skip
    assert [(t, ev) for t, ev, _ in w.events("limit:hr_low", 0)] == [(6.0, "raised")]
    assert [(t, ev) for t, ev, _ in w.events("limit:hr_low", 1)] == [(6.0, "raised")]  # bed 1: no pleth at all
    assert not [e for _, e in w.log if e.event == "held" and e.alert.kind == "limit:hr_low"]
    # the flat pleth makes bed 0's SpO2 suspect, but NEWS2's alarm stands on the HR of 0 (it scores 3): not held either
    assert [(t, ev) for t, ev, _ in w.events("news2", 0)] == [(0.0, "raised")]
    assert not [e for _, e in w.log if e.event == "held"]


def test_a_news2_alarm_from_a_reading_that_looks_like_artefact_is_held_and_suppressed_if_it_goes() -> None:
    """A 3 s burst of motion shows HR 150 (NEWS2 scores it 3) while a good pleth shows 80/min: the NEWS2 alarm is held,
    then suppressed when the reading returns; with a sound ECG the same reading raises it at once."""
    w = Ward()
    w.set(0, hr=150)
    w.set(1, hr=150)

    def feed(t: int) -> None:
        w.quality(0, t, good=False, reason="ECG noisy (motion?)")
        w.quality(0, t, signal="pleth", good=True, rate=80)
        w.quality(1, t, good=True)
        if t == 3:
            w.set(0, hr=80)
            w.set(1, hr=80)

    w.run(0, 10, feed)
    got = w.events("news2", 0)
    assert [(t, ev) for t, ev, _ in got] == [(0.0, "held"), (3.0, "suppressed")]
    assert "heart rate: ECG noisy (motion?); pleth pulse 80/min disagrees with HR 150" in got[0][2]
    assert [ev for _, ev, _ in w.events("news2", 1)][:1] == ["raised"] and w.events("news2", 1)[0][0] == 0.0
    # a poor pleth holds a NEWS2 alarm scored on a low SpO2 for at most the SpO2 limit's delay plus hold, then raises it
    w2 = Ward()
    w2.set(0, spo2=90)  # NEWS2 scale 1: SpO2 <= 91 scores 3
    w2.run(0, 27, lambda t: w2.quality(0, t, signal="pleth", good=False, reason="pleth irregular (motion?)"))
    assert [(t, ev) for t, ev, _ in w2.events("news2")] == [(0.0, "held"), (25.0, "raised")]  # SpO2: 15 s delay + 10 s hold
