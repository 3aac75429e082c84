"""The alarm engine: every rule family evaluated over all beds, reconciled into one alarm book.

Families, each reconciled separately (a family's alarms clear only when that
family says so): ``limit`` (physiological limits), ``arrhythmia`` (asystole), ``news2``, ``mews``,
``qsofa`` (score bands), ``trend`` (NEWS2 rise, SpO2 fall) and ``technical``.
After reconciling, the book's clock runs: silences end, unacknowledged alarms
escalate. The engine holds no I/O; the hub persists and pushes the events.

Artefact-aware alarming (``alerts.artefact``): the signal-processing worker feeds
each lead's quality in with ``set_lead_quality``; heart-rate and SpO2 limit
conditions that look like artefact are held (audited ``held`` events) before the
limit family is reconciled, and lasting poor quality adds technical conditions.
The same verdicts drive the ``arrhythmia`` family (``alerts.arrhythmia``): an
asystole alarm when the ECG shows no QRS and the pleth no pulse.
Last, every open alarm gets its headline group (``alerts.headline``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alerts.arrhythmia import FAMILY as ARRHYTHMIA
from alerts.arrhythmia import asystole_conditions
from alerts.artefact import ArtefactGate
from alerts.headline import regroup
from alerts.kinds import MEWS, NEWS2, NEWS2_RISE, QSOFA
from alerts.lead_quality import LeadQuality
from alerts.lifecycle import AlarmBook, AlertEvent, Condition, Priority, Rules
from alerts.limits import LimitTracker
from alerts.policy import AlarmPolicy, Limit, PolicyError, WardPolicy
from alerts.score_alerts import news2_conditions, trigger_conditions
from alerts.score_tables import ScoreTables
from alerts.scoring import Scores
from alerts.technical import TechnicalTracker, TechnicalView
from alerts.trends import TrendTracker
from wire.config import validate
from wire.vocabulary import COLUMN

_SPO2 = COLUMN["spo2"]


def rules_from_policy(policy: AlarmPolicy) -> Rules:
    def after(ward: str, p: Priority) -> float | None:
        return policy.for_ward(ward).escalate_after_s.get(p)

    return Rules(
        latching=lambda ward, family: policy.for_ward(ward).latching.get(family, False),
        tiers=lambda ward: policy.for_ward(ward).tiers,
        escalate_after_s=after,
        silence_max_s=lambda ward: policy.for_ward(ward).silence_max_s,
        clear_delay_s=lambda ward, family: policy.for_ward(ward).clear_delay_s.get(family, 0.0),
    )


class BedPolicies:
    """Each bed's ward policy, and the arrays the vectorised rules need; rebuilt when beds change."""

    def __init__(self, policy: AlarmPolicy, wards: Sequence[str]) -> None:
        self.per_bed: list[WardPolicy] = [policy.for_ward(w) for w in wards]
        n = len(wards)
        self.news2_enabled = np.fromiter((p.news2.enabled for p in self.per_bed), bool, n)
        self.no_data_ms = np.fromiter((p.no_data_s * 1000 for p in self.per_bed), float, n)
        self.probe_delay_ms = np.fromiter((p.probe_off_delay_s * 1000 for p in self.per_bed), float, n)
        self.trend_rules = [(p.news2_rise, p.spo2_fall) for p in self.per_bed]


class AlarmEngine:
    """The alarm rules of ``policy`` over scores computed with ``tables``, reconciled into ``book``."""

    def __init__(self, policy: AlarmPolicy, book: AlarmBook, tables: ScoreTables) -> None:
        self.policy = policy
        self.book = book
        self.tables = tables  # band edges and triggers, for the score alarms' titles
        book.rules = rules_from_policy(policy)
        params = sorted({p for w in [policy.defaults, *policy.wards.values()] for p in w.limits})
        self.limits = LimitTracker(params)
        self.trends = TrendTracker()
        self.technical = TechnicalTracker()
        self.artefact = ArtefactGate()
        self._rows: dict[str, int] = {}
        self._grouped = False  # every open alarm grouped once (after a start or restore)
        self.bed_limits: dict[str, dict[str, Limit]] = {}  # per-bed overrides
        self._limits_key: tuple = ()

    def set_bed_limit(self, bed: str, ward: str, param: str, low: float | None, high: float | None) -> Limit:
        """Override one parameter's limits for one bed (delay, hysteresis and priority stay the ward's)."""
        lim = self.bed_limit(bed, ward, param, low, high)
        self.bed_limits.setdefault(bed, {})[param] = lim
        self._limits_key = ()
        return lim

    def clear_bed_limit(self, bed: str, param: str) -> None:
        """The bed's ``param`` goes back to its ward's limits."""
        own = self.bed_limits.get(bed, {})
        if own.pop(param, None) is not None:
            self._limits_key = ()
        if not own:
            self.bed_limits.pop(bed, None)

    def bed_limit(self, bed: str, ward: str, param: str, low: float | None, high: float | None) -> Limit:
        """The override ``set_bed_limit`` would apply, checked against the ward's policy; nothing changes. Raises
        ``PolicyError``."""
        base = self.policy.for_ward(ward).limits.get(param)
        if base is None:
            raise PolicyError(f"{param} has no limit alarm in ward {ward!r}'s policy")
        if low is None and high is None:
            raise PolicyError("give a low or a high limit")
        if low is not None and high is not None and low >= high:
            raise PolicyError(f"low {low:g} must be below high {high:g}")
        spec = {"param": param, "low": low, "high": high, "delay_s": base.delay_s, "hysteresis": base.hysteresis, "priority": base.priority}
        return validate(Limit, spec, f"bed {bed}: limits.{param}", PolicyError)

    def set_lead_quality(self, bed: str, quality: LeadQuality) -> None:
        """The latest signal quality of one lead of ``bed`` (``quality.signal``: "ecg" or "pleth"), as the
        signal-processing worker analysed it; the next ``evaluate`` uses it. Raises ``ValueError`` for another signal.
        Only replaces one dict entry, so the worker may call it from its own thread."""
        self.artefact.set_quality(bed, quality)

    def forget_lead_quality(self, bed: str) -> None:
        """The bed's waveforms are gone for good: its alarms behave as without waveforms from the next pass."""
        self.artefact.forget(bed)

    def _hold_unknown(self, family: str, conds: dict[tuple[str, str], Condition], unknown: np.ndarray, beds: Sequence[str]) -> None:
        """Missing inputs are not evidence of recovery: an open alarm whose score cannot be
        computed now keeps its condition (at least at its priority) until a score can say otherwise."""
        rows = {b: i for i, b in enumerate(beds)}
        for (subject, kind), a in self.book.open.items():
            if a.family != family or not a.condition:
                continue
            i = rows.get(a.bed)
            if i is not None and not unknown[i]:
                continue  # a bed not (yet) reporting after a restart is unknown too
            held = conds.get((subject, kind))
            if held is None or held.priority < Priority[a.priority.upper()]:
                conds[(subject, kind)] = Condition(subject, a.bed, a.ward, kind, Priority[a.priority.upper()], a.title,
                                                   a.detail, a.category)  # fmt: skip

    def _hold_returning(self, conds: dict[tuple[str, str], Condition], hold: frozenset[str]) -> None:
        """After a hub restart, the technical alarms of agents not yet back keep their condition until the
        agents return or the restart grace ends: their absence is not evidence that the fault cleared."""
        for (subject, kind), a in self.book.open.items():
            if a.family == "technical" and a.condition and (subject in hold or a.bed in hold) and (subject, kind) not in conds:
                conds[(subject, kind)] = Condition(subject, a.bed, a.ward, kind, Priority[a.priority.upper()], a.title,
                                                   a.detail, a.category)  # fmt: skip

    def limits_of(self, bed: str, ward: str) -> dict[str, Limit]:
        return self.policy.for_ward(ward).limits | self.bed_limits.get(bed, {})

    def evaluate(
        self,
        now: int,
        beds: Sequence[str],
        wards: Sequence[str],
        scores: Scores,
        tech: TechnicalView,
    ) -> list[AlertEvent]:
        n = len(beds)
        key = (n, tuple(wards))
        if key != self._limits_key:
            self.limits.set_limits([self.limits_of(b, w) for b, w in zip(beds, wards, strict=True)])
            self.bed_policies = BedPolicies(self.policy, wards)
            self._rows = {b: i for i, b in enumerate(beds)}
            self._limits_key = key
        bp = self.bed_policies
        pols = bp.per_bed
        inputs, news2 = scores.inputs, scores.news2
        self.limits.update(inputs, now)
        self.trends.update(now, news2.total, inputs[:, _SPO2])
        events: list[AlertEvent] = []
        limit_conds = self.limits.conditions(beds, wards, inputs)
        events += self.artefact.gate(now, limit_conds, self.book, self._rows, pols, inputs, self.limits)
        technical = self.technical.conditions(tech, pols, bp.no_data_ms, bp.probe_delay_ms)
        if self.artefact.quality:
            technical.update(self.artefact.technical_conditions(now, self._rows, wards, pols))
        families: dict[str, dict[tuple[str, str], Condition]] = {
            "limit": limit_conds,
            # without any lead analysed there is no asystole condition (an open one clears, or latches)
            ARRHYTHMIA: asystole_conditions(now, self.artefact, self.book.open, self._rows, wards, pols, tech.flags) if self.artefact.quality else {},
            "trend": self.trends.conditions(now, beds, wards, news2.total, bp.trend_rules),
            "technical": technical,
        }
        families[NEWS2] = news2_conditions(news2, beds, wards, self.policy.defaults.news2, self.tables, bp.news2_enabled)
        families.update(trigger_conditions(scores.mews, scores.qsofa, beds, wards, pols, self.tables))
        if self.artefact.quality or self.artefact.holds:  # score and trend alarms held while a reading they use looks like artefact
            subs = {NEWS2: (news2.COMPONENTS, news2.subscores), NEWS2_RISE: (news2.COMPONENTS, news2.subscores),
                    MEWS: (scores.mews.COMPONENTS, scores.mews.subscores)}  # fmt: skip
            for family in (NEWS2, MEWS, "trend"):
                if family in families:
                    events += self.artefact.gate(now, families[family], self.book, self._rows, pols, inputs, family=family,
                                                 subscores=subs, news2_medium=self.tables.news2.medium)  # fmt: skip
        # missing inputs are no evidence of recovery: these families hold their alarms while the score is unknown
        unknown = {NEWS2: news2.incomplete, "trend": np.isnan(news2.total), MEWS: scores.mews.incomplete, QSOFA: scores.qsofa.incomplete}
        if tech.hold:
            self._hold_returning(families["technical"], tech.hold)
        for family, fam_conds in families.items():
            if family in unknown:
                self._hold_unknown(family, fam_conds, unknown[family], beds)
            events += self.book.reconcile(family, fam_conds, now)
        events += self.book.tick(now)
        subjects = None if not self._grouped else self.book.touched
        if subjects is None or subjects:
            events += regroup(self.book.open, subjects, events, now)
            self.book.touched = set()
            self._grouped = True
        return events

    def artefact_stats(self) -> dict[str, int]:
        """Counters of artefact holds since start: held, suppressed, raised_after_hold, hold_ended; holds in progress."""
        return self.artefact.stats()


