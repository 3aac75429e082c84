"""The hub's core: takes decoded edge frames in, keeps the bed-state matrix, scores, alarms, pushes.

Transport-free: the FastAPI layer (``ingest.app``) feeds it frames and drains
its console feed. One ``tick`` runs the vectorised NEWS2 pass over every bed,
reconciles alarms, and pushes changed beds; ticks run shortly after new data
arrives (``min_tick_ms``) and at least every ``max_tick_ms`` so staleness shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from alerts.engine import AlarmEngine
from alerts.kinds import AGENT_OFFLINE, UNDELIVERED
from alerts.lead_quality import LeadQuality
from alerts.lifecycle import AlarmBook, AlertError, AlertEvent
from alerts.policy import AlarmPolicy, Limit, PolicyError
from alerts.score_tables import ScoreTables
from alerts.scoring import Scores, score_beds
from alerts.technical import AGENT_SUBJECT, TechnicalView
from ingest.adt.apply import AdtApplier
from ingest.adt.listener import AdtListener
from ingest.agents import AgentRegistry
from ingest.audit_writer import AgentRecord, AlarmRecord, AuditWriter, BedSetting, DataGap
from ingest.auth.audit_log import AuditEntry
from ingest.auth.service import AGENT_KEY, AuthService
from ingest.band_census import BandCensus, census_rows
from ingest.bed_state import BedState
from ingest.console_feed import ConsoleFeed
from ingest.console_relay_contract import ChartedValue
from ingest.dedup import SeqTracker
from ingest.hub_config import HubConfig
from ingest.latency import LatencyRecorder
from ingest.overload import OverloadDetector, watch_loop_lag
from ingest.patients import charting
from ingest.patients.charting import chart_value, charted_observation
from ingest.patients.hourly import HourlySummaries
from ingest.patients.score_changes import ScoreChanges
from ingest.patients.service import Actor, PatientRefused, PatientService
from ingest.resends import LastStored
from ingest.score_log import ScoreLog
from ingest.stores.base import Batch, StoreError, Stores
from ingest.unmapped_counts import UnmappedCounts
from ingest.video.relay import VideoRelay
from ingest.video.turn_credentials import TurnCredentials
from ingest.wave_feed import WaveFeed
from ingest.waveform_quality import WaveformQuality
from wire.clock import wall_ms
from wire.messages import Hello, Observation, ObsFrame, Status, WaveChunk
from wire.outbox_events import AlarmEvent, VitalValue
from wire.screen import screen
from wire.vocabulary import BY_KEY, HUB_DERIVED, LEAD_BY_KEY, PARAMETERS

if TYPE_CHECKING:
    from ingest.console_relay import ConsoleRelay

log = logging.getLogger(__name__)

SPO2_SCALE = "spo2_scale"  # the names of a bed's settings in the state store
LIMIT_PREFIX = "limit:"
CLEARED: dict[str, Any] = {"low": None, "high": None}  # a bed limit back to its ward's
SETTINGS_STORED_S = 2.0  # a patient moved to another worker's ward: her settings are stored within this before it is told

NEEDS_DELIVERY = frozenset({"raised", "priority_raised", "escalated", "unsilenced"})
CHART_AGENT = "chart"  # the sample store's batch source for charted values (no sequence: each is stored as it comes)
TO_RECORDS = frozenset({"raised", "acknowledged", "resolved"})  # alarm events the records services hear of
STOP_FLUSH_S = 5.0  # on stop, watermarks and queued audit events get this long (a dead InfluxDB must not hang it)


class Hub:
    def __init__(
        self, cfg: HubConfig, stores: Stores, clock: Callable[[], int] = wall_ms, *, policy: AlarmPolicy, tables: ScoreTables
    ) -> None:
        self.cfg = cfg
        self.stores = stores
        self.store = stores.samples  # the time series: what edge frames become
        self.state_store = stores.state  # alarms, audit, gaps, agents, watermarks
        self.clock = clock
        self.policy = policy
        self.tables = tables  # the score tables every tick scores with
        self.counters: Counter[str] = Counter()
        self.state = BedState()
        self.book = AlarmBook()
        self.engine = AlarmEngine(self.policy, self.book, self.tables)
        self.agents = AgentRegistry(self.counters)
        self.audit = AuditWriter(self.state_store, self.store, self.counters)
        self.auth = AuthService(stores.state.db, self.audit.persist, clock, self.counters)
        self.patients = PatientService(stores.state.db, clock, self.last_vitals, self._patient_moved)
        self.score_changes = ScoreChanges()  # admitted patients' NEWS2 over their stay
        self.hourly = HourlySummaries(stores.state.db, self.store.trends, clock)
        self.band_census = BandCensus(stores.state.db, self._band_rows, clock)  # beds per NEWS2 band, for the KPI page
        self.adt = AdtListener.from_settings(cfg.adt, AdtApplier(self)) if cfg.adt is not None else None  # HL7 ADT from the HIS
        self.watched_since: dict[int, int] = {}  # bed row -> when its agent last connected
        self.device_patients: dict[str, tuple[str, str, str]] = {}  # bed -> (patient id its monitor names, device, agent)
        self._mismatched: set[str] = set()  # beds whose monitor names another patient than the one admitted
        self.pending_delivery: dict[str, int] = {}  # alert id -> when the event needing delivery was pushed
        self.feed = ConsoleFeed()
        self.waves = WaveFeed()  # live waveforms to the bed detail pages watching
        video = cfg.video
        turn = TurnCredentials(video.turn.urls if video.turn else [], video.turn.secret() if video.turn else None,
                               video.credential_ttl_s, video.stun_urls)  # fmt: skip
        self.video = VideoRelay(turn, video.max_viewers_per_bed, self.audit.persist, clock)  # signalling only, never media
        self.seqs = SeqTracker()
        self.last_stored = LastStored()  # tells a device's re-send of a stored sample from a new one
        self.unmapped = UnmappedCounts()
        self.score_log = ScoreLog()  # which beds' scores go to the time-series store on each tick
        self.raised_by_kind: Counter[str] = Counter()
        self.push_latency = LatencyRecorder()  # hub arrival -> queued to consoles, ms
        self._staleness_ms = cfg.staleness_ms()
        self._pending_since: dict[int, int] = {}  # bed row -> earliest hub arrival not yet pushed
        self._dirty: set[int] = set()  # bed rows to push for other reasons (agent came or went)
        self._last_scores: tuple[np.ndarray, ...] | None = None
        self._wake = asyncio.Event()
        self._started = False
        self.waveform_quality = WaveformQuality(self._lead_judged)
        self.overload = OverloadDetector()  # fed by watch_loop_lag in run(); brakes the agents' readers (edge_endpoint)
        self.jetstream_stats: Callable[[], dict[str, Any]] | None = None  # set by a JetStream worker (ingest.jetstream_worker)
        self.relay: ConsoleRelay | None = None  # set by a JetStream worker: consoles see wards other workers own

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Open the stores and restore state from them; a second call does nothing. Raises ``StoreError``."""
        if self._started:
            return
        await self.stores.start()
        self._started = True
        self.seqs = SeqTracker(await self.state_store.last_seqs())
        self.book = AlarmBook()
        self.book.restore(await self.state_store.open_alerts())
        self.engine = AlarmEngine(self.policy, self.book, self.tables)
        offline_alarms = {a.subject.removeprefix(AGENT_SUBJECT): a.raised for a in self.book.open.values() if a.kind == AGENT_OFFLINE}
        remembered = await self.state_store.known_agents()
        self.agents.restore(remembered, offline_alarms, lambda ward: int(self.policy.for_ward(ward).agent_offline_s * 1000), self.clock())
        for agent, ward, beds in remembered:  # their beds are on the census, shown offline, until the agent is back
            for bed in beds:
                self.state.row(bed, ward=ward, agent=agent)
        await self.restore_bed_settings()
        await self.patients.load()
        self.score_changes.restore(await self.state_store.last_score_points())

    async def run(self) -> None:
        """Run the tick loop and the audit writer until cancelled."""
        seq, digest = await self.state_store.audit_head()
        log.info("audit log head: entry %d, hash %s (keep it: a log cut back from its end is found against it)", seq, digest)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._tick_loop(), name="hub-ticks")
            tg.create_task(self.audit.run(), name="hub-audit-writer")
            tg.create_task(self.auth.watch(), name="hub-auth-watch")
            tg.create_task(self.hourly.run(), name="hub-hourly-summaries")
            tg.create_task(self.band_census.run(), name="hub-band-census")
            tg.create_task(watch_loop_lag(self.overload, self._overload_changed), name="hub-overload-watch")
            if self.adt is not None:
                tg.create_task(self.adt.run(), name="hub-adt-listener")
            if self.cfg.waveform_analysis:
                tg.create_task(self.waveform_quality.run(), name="hub-waveform-quality")

    def _overload_changed(self) -> None:
        if self.overload.overloaded:
            self.counters["overload_episodes"] += 1
            log.warning("overloaded: %s", self.overload.reason())
        else:
            log.warning("no longer overloaded (peak event-loop lag %.0f ms)", self.overload.peak_ms)
        self._wake.set()

    async def stop(self) -> None:
        """Save the latest watermarks and the queued audit events, then close the stores.

        A failing store does not stop the shutdown: what could not be saved is
        logged (the watermarks saved with each batch stay valid, so agents only
        re-send frames the hub will deduplicate or store again).
        """
        try:
            async with asyncio.timeout(STOP_FLUSH_S):
                await self.state_store.save_marks({key: m.floor for key, m in self.seqs.durable.items()})
                await self.audit.flush()
        except (StoreError, TimeoutError) as exc:
            log.error("stopping with the store failing (%s): %d alarm audit events not saved",
                      str(exc) or f"no answer in {STOP_FLUSH_S:g} s", self.audit.waiting)  # fmt: skip
        await self.stores.stop()

    async def _tick_loop(self) -> None:
        min_s, max_s = self.cfg.min_tick_ms / 1000, self.cfg.max_tick_ms / 1000
        while True:
            try:
                async with asyncio.timeout(max_s):  # not wait_for: on 3.11 it can swallow a cancellation
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            self.tick()
            await asyncio.sleep(min_s)

    # --- edge input --------------------------------------------------------------

    def hello(self, h: Hello) -> int:
        """Register an agent's beds; returns the highest durably stored sequence of this epoch."""
        now = self.clock()
        for bed in h.beds:
            row = self.state.row(bed, ward=h.ward, agent=h.agent)
            self._dirty.add(row)
            self.watched_since[row] = now
            self.store.set_bed_tags(bed, ward=h.ward)
        self.seqs.raise_floor(h.agent, h.epoch, h.floor)
        record = self.agents.hello(h)
        if record is not None:
            self.audit.persist(record)
        self._wake.set()
        return self.seqs.last_durable(h.agent, h.epoch)

    def goodbye(self, h: Hello) -> None:
        self.agents.goodbye(h, self.clock())
        self._dirty.update(self.state.index[bed] for bed in h.beds)
        self._wake.set()

    def forget_agent(self, agent: str) -> None:
        """Stop expecting an agent that is not connected: its offline alarm clears, a restart does not await it.

        Raises ``KeyError`` for an agent the hub does not know and ``ValueError`` for one that is connected.
        """
        self.audit.persist(self._stop_expecting(agent))

    def agent_served_elsewhere(self, agent: str) -> bool:
        """A hub worker no longer consumes the agent's ward (another worker owns it now): stop expecting the agent
        here, as ``forget_agent`` does, so this worker raises no "agent offline" or "no data" alarm for beds it does
        not serve. Nothing is written to the shared state store, where the ward's new owner keeps the agent.
        Returns False for an agent this hub does not know or that is connected to it."""
        try:
            self._stop_expecting(agent)
        except (KeyError, ValueError):
            return False
        return True

    async def take_ward(self, ward: str) -> tuple[int, int]:
        """A hub worker owns ``ward`` now: it carries on the ward's open alarms from the shared state store (another
        worker raised them, or this one before it let the ward go) and expects the ward's remembered agents, so one
        that never publishes raises "agent offline" here. Consoles hear the whole ward from it (its beds at the next
        tick, its open alarms as ``adopted`` events). Returns (alarms adopted, agents expected). Raises
        ``StoreError``."""
        alarms = [body for body in await self.state_store.open_alerts() if body.get("ward") == ward]
        remembered = [(agent, beds) for agent, w, beds in await self.state_store.known_agents() if w == ward]
        adopted = self.book.adopt(alarms)
        now = self.clock()
        expected = 0
        for agent, beds in remembered:
            if self.agents.expect(agent, ward, beds, now):
                expected += 1
                for bed in beds:
                    self.state.row(bed, ward=ward, agent=agent)
        await self.restore_bed_settings(ward)  # as the ward's last owner (or a clinician on another worker) set them
        await self.patients.load(ward)  # patients admitted, moved or discharged while another worker held the ward
        # the ward's consoles elsewhere hear from this worker now: every bed at the next tick, and its open alarms
        self._dirty.update(row for row, info in enumerate(self.state.beds) if info.ward == ward)
        for a in self.book.list_open():
            if a.ward == ward:
                self.feed.publish({"type": "alert", "event": "adopted", "alert": a.to_json()}, ward=ward)
        self._wake.set()
        return adopted, expected

    def leave_ward(self, ward: str) -> tuple[int, int]:
        """A hub worker no longer owns ``ward`` (or has not taken it yet): the ward's open alarms leave this hub's
        book unchanged, and its agents not connected here are no longer expected (``agent_served_elsewhere``), so
        this worker neither resolves, escalates nor raises alarms for beds another worker serves. Nothing is written
        to the shared state store, where the ward's owner carries them on. Returns (alarms let go, agents)."""
        released = self.book.let_go(ward)
        agents = [agent for agent, w in list(self.agents.wards.items()) if w == ward]
        handed = sum(self.agent_served_elsewhere(agent) for agent in agents)
        self._wake.set()
        return released, handed

    def _stop_expecting(self, agent: str) -> AgentRecord:
        rows = [row for row, info in enumerate(self.state.beds) if info.agent == agent]
        record = self.agents.forget(agent, [self.state.beds[row].bed for row in rows])
        for row in rows:  # its beds stay on the census with no agent: nothing watches them, nothing alarms
            self.state.beds[row].agent = ""
            self._dirty.add(row)
            self.waveform_quality.forget(self.state.beds[row].bed)  # and their waveform buffers go
        self._wake.set()
        return record

    def agents_json(self) -> list[dict[str, Any]]:
        return self.agents.json()

    def agent_status(self, h: Hello, status: Status, *, floor_is_final: bool = True) -> None:
        """An agent's report: device conditions, and its spool (drops raise a technical alarm). Its floor is final on
        the WebSocket (every frame up to it acknowledged by this hub or dropped), not on JetStream (acknowledged by
        the stream, not necessarily stored yet): there ``floor_is_final`` is False and the floor is not applied."""
        floor = self.agents.status(h, status, self.clock())
        if floor is not None and floor_is_final:
            self.seqs.raise_floor(h.agent, h.epoch, floor)

    def take_frame(self, h: Hello, msg: ObsFrame | WaveChunk, t_hub: int) -> tuple[Batch | None, list[dict[str, Any]]]:
        """Screen a decoded data frame. Returns the batch to store (None for a duplicate) and rejections."""
        if not self.seqs.is_new(h.agent, h.epoch, msg.seq):
            self.counters["frames_duplicate"] += 1
            return None, []
        self.counters["frames_ingested"] += 1
        batch = Batch(agent=h.agent, epoch=h.epoch, seq=msg.seq, mark=self.seqs.last_durable(h.agent, h.epoch))
        rejected: list[dict[str, Any]] = []
        if isinstance(msg, WaveChunk):
            reason = self._screen_wave(h, msg, t_hub)
            if reason:
                rejected.append({"bed": msg.bed, "lead": msg.lead, "reason": reason})
            else:
                batch.waves.append(msg)
                self.counters["wave_chunks_accepted"] += 1
                self.waves.publish(msg)
                if self.cfg.waveform_analysis:
                    self.waveform_quality.add(msg)
        else:
            accepted = 0
            for idx, o in enumerate(msg.obs):
                reason = self._screen_obs(h, o, t_hub)
                if reason:
                    rejected.append({"index": idx, "bed": o.bed, "param": o.param, "reason": reason})
                    continue
                accepted += 1
                if self.last_stored.is_resend(o):  # already on disk: shown live, not stored again
                    self.counters["obs_resent"] += 1
                else:
                    batch.obs.append(o)
                self._note_gap(o.bed, h.ward, t_hub)
                row = self.state.apply(o, t_hub=t_hub, agent=h.agent)
                if row is not None:
                    self._pending_since.setdefault(row, t_hub)
            for ps in msg.patients:
                reason = self._screen_common(h, ps.bed, ps.t, t_hub)
                if reason:
                    rejected.append({"bed": ps.bed, "patient_id": ps.patient_id, "reason": reason})
                    continue
                self.device_patients[ps.bed] = (ps.patient_id.strip(), ps.device, h.agent)
                self._wake.set()
            for u in msg.unmapped:
                reason = self._screen_common(h, u.bed, u.t_dev, t_hub)
                if reason:
                    rejected.append({"bed": u.bed, "system": u.system, "code": u.code, "reason": reason})
                    continue
                batch.unmapped.append(u)
                self.unmapped.add(u)
            self.counters["obs_accepted"] += accepted
            self.counters["unmapped_accepted"] += len(batch.unmapped)
            if accepted:
                self._wake.set()
        self.counters["obs_rejected"] += len(rejected)
        return batch, rejected

    def _note_gap(self, bed: str, ward: str, t_hub: int) -> None:
        """Data from a bed that had been silent longer than ``gap_s``: record the gap (once)."""
        i = self.state.index.get(bed)
        prev = self.state.beds[i].last_rx if i is not None else None
        if prev is None or t_hub - prev <= self.cfg.gap_s * 1000:
            return
        self.state.beds[i].last_rx = t_hub  # the gap is recorded once, even if older values follow
        self.counters["data_gaps"] += 1
        self.feed.publish({"type": "gap", "bed": bed, "ward": ward, "start": prev, "end": t_hub}, ward=ward or None)
        self.audit.persist(DataGap(bed, prev, t_hub))

    def _screen_common(self, h: Hello, bed: str, t_dev: int, t_hub: int) -> str | None:
        if h.beds and bed not in h.beds:
            return f"bed {bed!r} is not among the beds agent {h.agent!r} announced"
        if t_dev > t_hub + self.cfg.max_clock_ahead_s * 1000:
            return f"device time is {(t_dev - t_hub) / 1000:.0f} s ahead of the hub clock"
        return None

    def _screen_obs(self, h: Hello, o: Observation, t_hub: int) -> str | None:
        return self._screen_common(h, o.bed, o.t_dev, t_hub) or screen(o)

    def _screen_wave(self, h: Hello, w: WaveChunk, t_hub: int) -> str | None:
        if w.lead not in LEAD_BY_KEY:
            return f"unknown waveform lead {w.lead!r}"
        return self._screen_common(h, w.bed, w.t_first, t_hub)

    def frame_rejected(self) -> None:
        self.counters["frames_rejected"] += 1

    def handled(self, h: Hello, seq: int, batch: Batch | None = None) -> None:
        """Frame ``seq`` is durably stored (``batch``, its rows) or was rejected or a duplicate: it may be acknowledged."""
        self.seqs.stored(h.agent, h.epoch, seq)
        if batch is not None:
            new, resent = self.last_stored.stored(batch.obs)
            self.counters["obs_stored"] += new
            self.counters["obs_resent"] += resent
            self.counters["unmapped_stored"] += len(batch.unmapped)
            self.counters["wave_chunks_stored"] += len(batch.waves)

    # --- scoring and push --------------------------------------------------------

    def score(self, now: int) -> Scores:
        """NEWS2, MEWS and qSOFA for every bed, each one vectorised pass over the bed-state matrix."""
        return score_beds(self.state.inputs_at(now, self._staleness_ms), self.state.scale2[: self.state.n], self.tables)

    def _band_rows(self, slot: int) -> list[tuple[int, str, str, int]]:
        return census_rows(slot, [b.ward for b in self.state.beds], self.score(self.clock()).news2.band)

    def tick(self) -> None:
        now = self.clock()
        sc = self.score(now)
        n = self.state.n
        beds = self.state.beds
        names, wards = [b.bed for b in beds], [b.ward for b in beds]
        for ev in self.engine.evaluate(now, names, wards, sc, self._technical_view(now, names, wards)):
            self._alert_event(ev)
        for change in self.score_changes.since_last(now, self.patients.census, self.state.index, sc.news2, self.state.scale2):
            self.audit.persist(change)
        verdicts = {"news2": (sc.news2, sc.news2.band), "mews": (sc.mews, sc.mews.triggered), "qsofa": (sc.qsofa, sc.qsofa.positive)}
        records = self.score_log.due(now, names, wards, verdicts, np.where(self.state.scale2[:n], 2, 1))
        if records:
            self.store.record_scores(records)
        changed = set(self._pending_since) | self._dirty
        changed.update(self._scores_changed(sc).tolist())
        if not changed:
            return
        pending, self._pending_since, self._dirty = self._pending_since, {}, set()
        out = [self.bed_json(i, now, sc, rx_hub=pending.get(i)) for i in sorted(changed) if i < n]
        self.feed.publish_beds(now, out)
        pushed = self.clock()
        self.push_latency.extend([pushed - t for t in pending.values()])
        self.counters["bed_updates_pushed"] += len(out)

    def _technical_view(self, now: int, names: list[str], wards: list[str]) -> TechnicalView:
        n = len(names)
        last_rx = np.array([b.last_rx or 0 for b in self.state.beds], dtype=np.int64)
        watched = np.array([self.watched_since.get(i, 0) for i in range(n)], dtype=np.int64)
        undelivered: dict[str, tuple[str, str, str]] = {}
        limit_ms = self.policy.defaults.undelivered_s * 1000
        for alert_id, t in self.pending_delivery.items():
            a = self.book.by_id.get(alert_id)
            if a is not None and now - t >= limit_ms and a.kind != UNDELIVERED:
                undelivered[a.bed or a.subject] = (a.ward, a.id, a.title)
        return TechnicalView(
            patient_mismatch=self._patient_mismatches(now),
            now=now,
            beds=names,
            wards=wards,
            agents=[b.agent for b in self.state.beds],
            last_rx=last_rx,
            watched_since=watched,
            flags=self.state.flags[:n],
            agents_offline=self.agents.offline(),
            store_error=self.store.error,
            overloaded=self.overload.reason(),
            undelivered=undelivered,
            devices_down=self.agents.devices_down(),
            hold=self.agents.restart_hold(now),
            spool_dropping=self.agents.spool_dropping(now),
        )

    def _patient_mismatches(self, now: int) -> dict[str, tuple[str, str]]:
        """Beds whose monitor names a patient other than the one admitted (compared with the MRN), each audited
        when it starts and when it ends."""
        out: dict[str, tuple[str, str]] = {}
        for bed, (seen, device, agent) in self.device_patients.items():
            admitted = self.patients.census.of_bed(bed)
            if admitted is None or admitted[1].mrn == seen:
                continue
            out[bed] = (admitted[0].ward, f"monitor {device} names patient {seen!r}; bed {bed} has {admitted[1].mrn} ({admitted[1].name}) admitted")
            if bed not in self._mismatched:
                self.audit.persist(AuditEntry(now, AGENT_KEY + agent, "patient.mismatch", f"bed:{bed}",
                                              {"device": device, "named": seen, "admitted": admitted[1].mrn}, "hub"))  # fmt: skip
        for bed in self._mismatched - out.keys():
            self.audit.persist(AuditEntry(now, "hub", "patient.mismatch_cleared", f"bed:{bed}", None, "hub"))
        self._mismatched = set(out)
        return out

    def _scores_changed(self, sc: Scores) -> np.ndarray:
        res = sc.news2
        cur = (res.partial, res.band, res.incomplete, np.nan_to_num(res.subscores, nan=-1.0), sc.mews.partial, sc.qsofa.partial)
        prev, self._last_scores = self._last_scores, cur
        n = len(res.partial)
        if prev is None or len(prev[0]) != n:
            return np.arange(n)
        diff = (cur[0] != prev[0]) | (cur[1] != prev[1]) | (cur[2] != prev[2]) | (cur[3] != prev[3]).any(axis=1)
        diff |= (cur[4] != prev[4]) | (cur[5] != prev[5])
        return np.flatnonzero(diff)

    def bed_json(self, i: int, now: int, sc: Scores, *, rx_hub: int | None = None) -> dict[str, Any]:
        info = self.state.beds[i]
        out: dict[str, Any] = {
            "bed": info.bed,
            "ward": info.ward,
            "agent": info.agent,
            "online": info.agent in self.agents.online,
            "last_rx": info.last_rx,
            "settings": {"spo2_scale": info.spo2_scale},
            "patient": self._patient_json(info.bed),
            "vitals": self.state.vitals_of(i, now),
            "news2": sc.news2.row(i),
            "mews": sc.mews.row(i),
            "qsofa": sc.qsofa.row(i),
        }
        if rx_hub is not None:
            out["rx_hub"] = rx_hub
        return out

    def _patient_json(self, bed: str) -> dict[str, Any] | None:
        admitted = self.patients.census.of_bed(bed)
        if admitted is None:
            return None
        enc, p = admitted
        return {"patient_id": p.patient_id, "mrn": p.mrn, "name": p.name, "sex": p.sex, "birth_date": p.birth_date,
                "encounter_id": enc.encounter_id, "admitted": enc.start, "diagnosis": p.diagnosis, "attending": p.attending}  # fmt: skip

    def beds_json(self, wards: frozenset[str] | None = None) -> list[dict[str, Any]]:
        """Every bed (of ``wards``, when given) with its vitals and scores now."""
        now = self.clock()
        sc = self.score(now)
        return [self.bed_json(i, now, sc) for i, b in enumerate(self.state.beds) if wards is None or b.ward in wards]

    async def chart(self, bed: str, param: str, value: float | str, t: int | None, actor: Actor) -> dict[str, Any]:
        """A nurse charts a value for the patient in ``bed``: stored, in the matrix, in the outbox and the audit log.
        Raises ``PatientRefused``."""
        admitted = self.patients.census.of_bed(bed)
        if admitted is None:
            raise PatientRefused(409, f"no patient is admitted to bed {bed}: admit first, then chart")
        now = self.clock()
        at = now if t is None else t
        if at > now + self.cfg.max_clock_ahead_s * 1000:
            raise PatientRefused(400, "a value cannot be charted for the future")
        obs = charted_observation(bed, param, chart_value(param, value), at, now, actor.name)
        await self.store.write(Batch(agent=CHART_AGENT, epoch=0, seq=0, obs=[obs]))  # the sample first: it is what counts
        enc = admitted[0]
        await self.patients.db.call(lambda conn: charting.record(conn, enc, obs, now, actor))
        self.counters["values_charted"] += 1
        self._apply_charted(obs, actor.name, now)
        ward = self.ward_of(bed)
        if self.relay is not None and ward and obs.value is not None and not self.relay.speaks_for(ward):
            await self.relay.charted(ward, ChartedValue(bed, param, obs.value, at, actor.name))
        return {"bed": bed, "param": param, "value": obs.value, "unit": BY_KEY[param].ucum, "t": at, "by": actor.name,
                "encounter_id": enc.encounter_id}  # fmt: skip

    def take_charted(self, bed: str, param: str, value: float, t: int, by: str) -> None:
        """A value charted through another hub worker, which stored it: into this worker's live state only (it owns
        the ward). Raises ``PatientRefused`` for one that does not pass the screen."""
        now = self.clock()
        self._apply_charted(charted_observation(bed, param, value, t, now, by), by, now)

    def _apply_charted(self, obs: Observation, by: str, now: int) -> None:
        row = self.state.apply(obs, t_hub=now, charted_by=by)
        if row is not None:
            self._pending_since.setdefault(row, now)
            self._wake.set()

    async def last_vitals(self, bed: str) -> list[VitalValue]:
        """The last valid value of each parameter a device measured or a nurse charted (for a discharge summary; the
        rates the hub derives from waveforms are quality aids, not the patient's record). On a JetStream worker, of
        a bed of a ward another worker owns: as that owner has them (this worker's own row only if it does not answer)."""
        ward = self.ward_of(bed)
        if self.relay is not None and ward and not self.relay.speaks_for(ward):
            row = await self.relay.bed_of_owner(bed, ward)
            if row is not None:
                return [VitalValue(param=k, value=x["value"], unit=BY_KEY[k].ucum, t=x["t"]) for k, x in row["vitals"].items()
                        if x["t"] and not x["flags"] and x["value"] is not None and k not in HUB_DERIVED and k in BY_KEY]  # fmt: skip
            self.counters["discharge_vitals_not_from_owner"] += 1
        i = self.state.index.get(bed)
        if i is None:
            return []
        out = []
        for p, v, t, f in zip(PARAMETERS, self.state.value[i].tolist(), self.state.t_dev[i].tolist(), self.state.flags[i].tolist(), strict=True):
            if t and f == 0 and v == v and p.key not in HUB_DERIVED:
                out.append(VitalValue(param=p.key, value=v, unit=BY_KEY[p.key].ucum, t=t))
        return out

    async def _patient_moved(self, from_bed: str | None, to_bed: str | None, from_ward: str | None, to_ward: str | None) -> None:
        """After this hub admitted, transferred or discharged a patient (or cancelled one of those): its part of the
        move, and on a JetStream worker the owners of the other wards concerned are told (they read the census again
        and do theirs)."""
        await self.apply_patient_move(from_bed, to_bed, to_ward)
        if self.relay is not None:
            await self.relay.patient_moved(from_bed, to_bed, from_ward, to_ward)

    async def apply_patient_move(self, from_bed: str | None, to_bed: str | None, to_ward: str | None) -> None:
        """Charted values and the bed's clinical settings follow the patient, never stay behind for the bed's next one;
        consoles see both beds change. On a JetStream worker only the owner of the ward she left holds that bed's
        current values and settings, so only it moves them; when her new bed's ward is another worker's, that worker
        is sent her charted values and told to read the settings once they are stored."""
        if to_bed is not None and to_ward and (from_bed is not None or self.relay is not None):
            self.state.row(to_bed, ward=to_ward)  # a bed with no row here (on a worker, another's): its ward, for its settings
        if from_bed is not None and from_bed != to_bed and self._speaks_for_bed(from_bed):
            charted = self.state.charted_of(from_bed)
            self.state.move_charted(from_bed, to_bed)
            moved_settings = self._move_settings(from_bed, to_bed)
            ward = self.ward_of(to_bed) if to_bed is not None else None
            if self.relay is not None and to_bed is not None and ward and not self._speaks_for_bed(to_bed):
                for param, value, t, by in charted:  # her charted values, into the new ward owner's live state
                    await self.relay.charted(ward, ChartedValue(to_bed, param, value, t, by))
                if moved_settings:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(SETTINGS_STORED_S):
                            await self.audit.caught_up()
                    await self._settings_told(ward)
        for bed in (from_bed, to_bed):
            if bed is not None:
                self.bed_changed(bed)

    def _speaks_for_bed(self, bed: str) -> bool:
        """This hub holds the bed's live state: always on a single hub; on a JetStream worker, a bed of a ward it
        speaks for (``ConsoleRelay.speaks_for``)."""
        if self.relay is None:
            return True
        ward = self.ward_of(bed)
        return ward is not None and self.relay.speaks_for(ward)

    def bed_changed(self, bed: str) -> None:
        """Something about a bed other than its vitals changed (a patient admitted or gone): push it to consoles."""
        i = self.state.index.get(bed)
        if i is not None:
            self._dirty.add(i)
            self._wake.set()

    def ward_of(self, bed: str) -> str | None:
        """The ward of a bed on the census, or None for a bed the hub does not know."""
        i = self.state.index.get(bed)
        return None if i is None else self.state.beds[i].ward

    # --- alerts --------------------------------------------------------------------

    def _alert_event(self, ev: AlertEvent) -> None:
        a = ev.alert
        self.counters[f"alerts_{ev.event}"] += 1
        if ev.event == "raised":
            self.raised_by_kind[a.kind] += 1
        if ev.event in NEEDS_DELIVERY:
            self.pending_delivery[a.id] = self.clock()
        elif ev.event == "resolved":
            self.pending_delivery.pop(a.id, None)
        self.feed.publish({"type": "alert", "event": ev.event, "alert": a.to_json()}, ward=a.ward or None)
        self.audit.persist(AlarmRecord(ev, self._alarm_outbox(ev)))

    def _alarm_outbox(self, ev: AlertEvent) -> AlarmEvent | None:
        """The records services' view of an alarm event about an admitted patient (None for any other)."""
        a = ev.alert
        admitted = self.patients.census.of_bed(a.bed) if a.bed and ev.event in TO_RECORDS else None
        if admitted is None:
            return None
        enc = admitted[0]
        return AlarmEvent(type=f"alarm.{ev.event}", encounter_id=enc.encounter_id, patient_id=enc.patient_id, bed=a.bed,  # type: ignore[arg-type]
                          alarm_id=a.id, kind=a.kind, priority=a.priority, category=a.category, detail=a.detail, t=a.updated,
                          by=a.acked_by, raised=a.raised, acknowledged=a.acked_at)  # fmt: skip

    def delivered(self, alert_ids: list[str]) -> None:
        """A console confirmed it received (and shows) these alarms."""
        for i in alert_ids:
            if self.pending_delivery.pop(i, None) is not None:
                self.counters["alert_deliveries_confirmed"] += 1

    def acknowledge(self, alert_id: str, by: str) -> dict[str, Any]:
        events = self.book.acknowledge(alert_id, by, self.clock())
        for ev in events:
            self._alert_event(ev)
        self.pending_delivery.pop(alert_id, None)
        return events[0].alert.to_json() if events else self.book.by_id[alert_id].to_json()

    def silence(self, alert_id: str, by: str, reason: str, duration_s: float) -> dict[str, Any]:
        ev = self.book.silence(alert_id, by, reason, duration_s, self.clock())
        self._alert_event(ev)
        return ev.alert.to_json()

    def _lead_judged(self, bed: str, quality: LeadQuality, derived: Observation) -> None:
        """The waveform analysis judged one of ``bed``'s leads: the verdict to the alarm engine, the rate it shows into
        the bed's row (a derived value: it does not count as the monitor being heard from)."""
        if bed not in self.state.index:
            return
        self.engine.set_lead_quality(bed, quality)
        now = self.clock()
        row = self.state.apply(derived, t_hub=now, derived=True)
        if row is not None:
            self._pending_since.setdefault(row, now)
        self._wake.set()

    async def set_spo2_scale(self, bed: str, scale: int) -> None:
        """The bed's NEWS2 SpO2 scale (1 or 2), stored in the state store before it applies, so a restart or another
        hub worker taking the ward keeps it. Raises ``KeyError`` (unknown bed), ``ValueError``, ``StoreError`` (not
        stored, so not applied)."""
        i = self.state.index[bed]
        if scale not in (1, 2):
            raise ValueError("spo2_scale must be 1 or 2")
        await self.state_store.save_bed_setting(bed, self.state.beds[i].ward, SPO2_SCALE, {"spo2_scale": scale})
        self.state.set_scale(bed, scale)
        self._wake.set()
        await self._settings_told(self.state.beds[i].ward)

    async def set_bed_limit(self, bed: str, param: str, low: float | None, high: float | None) -> Limit:
        """One parameter's alarm limits for one bed, checked against its ward's policy, stored, then applied (as the
        SpO2 scale). Raises ``KeyError``, ``PolicyError``, ``StoreError``."""
        ward = self.state.beds[self.state.index[bed]].ward
        lim = self.engine.bed_limit(bed, ward, param, low, high)
        await self.state_store.save_bed_setting(bed, ward, LIMIT_PREFIX + param, {"low": low, "high": high})
        self.engine.set_bed_limit(bed, ward, param, low, high)
        self._wake.set()
        await self._settings_told(ward)
        return lim

    async def _settings_told(self, ward: str) -> None:
        """On a JetStream worker, the owner of ``ward``, if another worker, reads its beds' settings again."""
        if self.relay is not None:
            await self.relay.bed_settings_changed(ward)

    async def restore_bed_settings(self, ward: str | None = None) -> int:
        """Apply the beds' settings kept in the state store (of one ward's beds, when given): at start, and when a
        hub worker takes a ward or hears that another changed one of its beds. A setting the ward's policy no longer
        allows is logged and counted, not applied. Returns how many applied. Raises ``StoreError``."""
        applied = 0
        for bed, bed_ward, name, body in await self.state_store.bed_settings(ward):
            if self._apply_setting(bed, bed_ward, name, body):
                applied += 1
        self._wake.set()
        return applied

    def _apply_setting(self, bed: str, ward: str, name: str, body: dict) -> bool:
        """One setting as the state store keeps it (a limit of ``low`` and ``high`` both null: the ward's again);
        False, logged and counted, when it cannot apply (the ward's policy no longer has that limit)."""
        try:
            if name == SPO2_SCALE:
                self.state.row(bed, ward=ward)
                self.state.set_scale(bed, body["spo2_scale"])
            elif name.startswith(LIMIT_PREFIX) and body.get("low") is None and body.get("high") is None:
                self.engine.clear_bed_limit(bed, name.removeprefix(LIMIT_PREFIX))
            elif name.startswith(LIMIT_PREFIX):
                self.engine.set_bed_limit(bed, ward, name.removeprefix(LIMIT_PREFIX), body.get("low"), body.get("high"))
            else:
                raise ValueError(f"unknown setting {name!r}")
        except (PolicyError, ValueError, KeyError, TypeError) as exc:
            self.counters["bed_settings_unusable"] += 1
            log.error("bed %s: setting %s %r not applied: %s", bed, name, body, exc)
            return False
        return True

    def _move_settings(self, from_bed: str, to_bed: str | None) -> bool:
        """The SpO2 scale and a bed's own limits are the patient's: they go with her to ``to_bed`` (replacing its own),
        and the bed she left goes back to scale 1 and its ward's limits, so its next patient never inherits them.
        Applied at once, kept through the audit writer (in order, retried until stored). True when anything changed."""
        i = self.state.index.get(from_bed)
        scale = self.state.beds[i].spo2_scale if i is not None else 1
        limits = dict(self.engine.bed_limits.get(from_bed, {}))
        theirs = set(self.engine.bed_limits.get(to_bed, {})) if to_bed is not None else set()
        j = self.state.index.get(to_bed) if to_bed is not None else None
        if scale == 1 and not limits and not theirs and (j is None or self.state.beds[j].spo2_scale == 1):
            return False  # nothing set on either bed: nothing to move or reset
        changes = [(from_bed, SPO2_SCALE, {"spo2_scale": 1}), *((from_bed, LIMIT_PREFIX + p, CLEARED) for p in limits)]
        if to_bed is not None:
            changes += [(to_bed, SPO2_SCALE, {"spo2_scale": scale}), *((to_bed, LIMIT_PREFIX + p, CLEARED) for p in theirs - set(limits)),
                        *((to_bed, LIMIT_PREFIX + p, {"low": lim.low, "high": lim.high}) for p, lim in limits.items())]  # fmt: skip
        for bed, name, body in changes:
            ward = self.state.beds[self.state.row(bed)].ward
            if self._apply_setting(bed, ward, name, body):
                self.audit.persist(BedSetting(bed, ward, name, body))
        return True

    def stats(self) -> dict[str, Any]:
        return {
            "counters": dict(self.counters),
            "beds": self.state.n,
            "agents_online": sorted(self.agents.online),
            "alerts_open": len(self.book.open),
            "push_latency_ms": self.push_latency.percentiles(),
            "consoles": len(self.feed.subscribers),
            "consoles_dropped": self.feed.dropped_consoles,
            "wave_watchers": self.waves.watching,
            "wave_feed": dict(self.waves.counters),
            "alerts_raised_by_kind": [{"kind": k, "count": n} for k, n in sorted(self.raised_by_kind.items())],
            "unmapped": self.unmapped.rows(),
            "store": self.store.stats(),
            "adt": dict(self.adt.counters) if self.adt is not None else {},
            "waveform_analysis": dict(self.waveform_quality.counters) | {"leads": len(self.waveform_quality.leads)},
            "artefact": self.engine.artefact_stats(),
            "overload": self.overload.stats(),
        } | ({"jetstream": self.jetstream_stats()} if self.jetstream_stats is not None else {})


__all__ = ["Hub", "AlertError", "wall_ms"]
