"""The hub's core: takes decoded edge frames in, keeps the bed-state matrix, scores, alarms, pushes.

Transport-free: the FastAPI layer (``ingest.app``) feeds it frames and drains
its console feed. One ``tick`` runs the vectorised NEWS2 pass over every bed,
reconciles alarms, and pushes changed beds; ticks run shortly after new data
arrives (``min_tick_ms``) and at least every ``max_tick_ms`` so staleness shows.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from alerts.engine import AlarmEngine, ScoreFlags
from alerts.lifecycle import AlarmBook, AlertError, AlertEvent
from alerts.mews import MewsResult, mews
from alerts.news2 import News2Result, news2
from alerts.qsofa import QsofaResult, qsofa
from alerts.score_tables import ScoreTables
from alerts.policy import AlarmPolicy
from alerts.technical import TechnicalView
from ingest.bed_state import BedState
from ingest.console_feed import ConsoleFeed
from ingest.dedup import SeqTracker
from ingest.hub_config import HubConfig
from ingest.latency import LatencyRecorder
from ingest.resends import LastStored
from ingest.score_log import ScoreLog
from ingest.unmapped_counts import UnmappedCounts
from ingest.store import Batch, Store, StoreError
from wire.messages import Hello, ObsFrame, Observation, Status, WaveChunk
from wire.screen import screen
from wire.vocabulary import COLUMN, LEAD_BY_KEY
from wire.clock import wall_ms

log = logging.getLogger(__name__)


RESTART_GRACE_MS = 15_000  # after the hub starts, agents get this long (the edge's longest reconnect backoff) on top
# of agent_offline_s to come back before an agent-offline alarm: a hub restart alone raises none
MAX_DEVICE_CONDITIONS = 20_000  # non-ok device conditions kept across all agents (free-text subjects are bounded)
SPOOL_DROP_HOLD_MS = 60_000  # a spool-dropping alarm holds this long after the last reported drop
NEEDS_DELIVERY = frozenset({"raised", "priority_raised", "escalated", "unsilenced"})
STOP_FLUSH_S = 5.0  # on stop, watermarks and queued audit events get this long (a dead InfluxDB must not hang it)
AUDIT_RETRY_S = (0.5, 10.0)  # a failed audit write is retried after 0.5 s, doubling up to 10 s, until it succeeds


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """An edge agent to remember (or, with ``forget``, to stop expecting) across hub restarts."""

    agent: str
    ward: str = ""
    beds: tuple[str, ...] = ()
    forget: bool = False


Persisted = AlertEvent | AgentRecord | tuple[str, int, int]  # what the audit writer saves, in order; a tuple is a data gap


@dataclass(frozen=True, slots=True)
class Scores:
    inputs: np.ndarray  # the bed-state matrix with stale, flagged and missing values as NaN
    news2: News2Result
    mews: MewsResult
    qsofa: QsofaResult


class Hub:
    def __init__(
        self, cfg: HubConfig, store: Store, clock: Callable[[], int] = wall_ms, *, policy: AlarmPolicy, tables: ScoreTables
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.clock = clock
        self.policy = policy
        self.tables = tables  # the score tables every tick scores with
        self.state = BedState()
        self.book = AlarmBook()
        self.engine = AlarmEngine(self.policy, self.book, self.tables)
        self.agent_wards: dict[str, str] = {}  # every agent seen since start -> its ward
        self.agent_offline_since: dict[str, int] = {}
        self.watched_since: dict[int, int] = {}  # bed row -> when its agent last connected
        self.pending_delivery: dict[int, int] = {}  # alert id -> when the event needing delivery was pushed
        self.device_status: dict[tuple[str, str, str], dict] = {}  # (bed, device, subject) -> non-ok status
        self.spool: dict[str, tuple[dict, int, int]] = {}  # agent -> (latest spool report, when, when drops last grew)
        self.feed = ConsoleFeed()
        self.seqs = SeqTracker()
        self.last_stored = LastStored()  # tells a device's re-send of a stored sample from a new one
        self.unmapped = UnmappedCounts()
        self.score_log = ScoreLog()  # which beds' scores go to the time-series store on each tick
        self.counters: Counter[str] = Counter()
        self.raised_by_kind: Counter[str] = Counter()
        self.push_latency = LatencyRecorder()  # hub arrival -> queued to consoles, ms
        self.agents_online: Counter[str] = Counter()
        self._staleness_ms = cfg.staleness_ms()
        self._pending_since: dict[int, int] = {}  # bed row -> earliest hub arrival not yet pushed
        self._dirty: set[int] = set()  # bed rows to push for other reasons (agent came or went)
        self._last_scores: tuple[np.ndarray, ...] | None = None
        self._wake = asyncio.Event()
        self._alert_log: asyncio.Queue[Persisted] = asyncio.Queue(maxsize=10_000)  # alarm events, data gaps, agents
        self._audit_in_hand: Persisted | None = None  # taken from the log, not yet written
        self.known_agents: dict[str, tuple[str, tuple[str, ...]]] = {}  # agent -> (ward, beds), as remembered
        self._started = False
        self._grace_until = 0  # hub time before which no agent counts as offline (set at start)
        self._returning: set[str] = set()  # remembered agents not yet back since the hub started
        self._no_grace: dict[str, int] = {}  # remembered agents whose offline alarm was open: offline since (ms)

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Open the store and restore state from it; a second call does nothing. Raises ``StoreError``."""
        if self._started:
            return
        await self.store.start()
        self._started = True
        self.seqs = SeqTracker(await self.store.last_seqs())
        self.book = AlarmBook(next_id=await self.store.max_alert_id() + 1)
        self.book.restore(await self.store.open_alerts())
        self.engine = AlarmEngine(self.policy, self.book, self.tables)
        now = self.clock()
        self._grace_until = now + RESTART_GRACE_MS
        already_offline = {a.subject.removeprefix("agent:"): a.raised for a in self.book.open.values() if a.kind == "technical:agent_offline"}
        for agent, ward, beds in await self.store.known_agents():  # expected back: offline until they say hello
            self.known_agents[agent] = (ward, tuple(beds))
            self.agent_wards[agent] = ward
            self.agent_offline_since[agent] = now
            if agent in already_offline:  # its alarm was open before the restart: it carries on, no grace
                self._no_grace[agent] = already_offline[agent] - self.policy.for_ward(ward).agent_offline_s * 1000
            self._returning.add(agent)
            for bed in beds:
                self.state.row(bed, ward=ward, agent=agent)

    async def run(self) -> None:
        """Run the tick loop and the alert persister until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._tick_loop(), name="hub-ticks")
            tg.create_task(self._persist_alerts(), name="hub-alert-log")

    async def stop(self) -> None:
        """Save the latest watermarks and the queued audit events, then close the store.

        A failing store does not stop the shutdown: what could not be saved is
        logged (the watermarks saved with each batch stay valid, so agents only
        re-send frames the hub will deduplicate or store again).
        """
        try:
            async with asyncio.timeout(STOP_FLUSH_S):
                await self._flush_for_stop()
        except (StoreError, TimeoutError) as exc:
            lost = self._alert_log.qsize() + (self._audit_in_hand is not None)
            log.error("stopping with the store failing (%s): %d alarm audit events not saved", str(exc) or f"no answer in {STOP_FLUSH_S:g} s", lost)
        await self.store.stop()

    async def _flush_for_stop(self) -> None:
        for (agent, epoch), marks in list(self.seqs.durable.items()):  # persist the latest watermarks
            await self.store.write(Batch(agent=agent, epoch=epoch, seq=0, mark=marks.floor))
        if self._audit_in_hand is not None:  # the persister was cancelled while writing it (if that write had
            # already reached the store, the event is audited twice: a duplicate is better than a loss)
            await self._save(self._audit_in_hand)
            self._audit_in_hand = None
        while not self._alert_log.empty():
            await self._save(self._alert_log.get_nowait())

    async def _tick_loop(self) -> None:
        min_s, max_s = self.cfg.min_tick_ms / 1000, self.cfg.max_tick_ms / 1000
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max_s)
            except TimeoutError:
                pass
            self._wake.clear()
            self.tick()
            await asyncio.sleep(min_s)

    async def _persist_alerts(self) -> None:
        """Write alarm events and data gaps in order; a failed write is retried until it succeeds."""
        while True:
            self._audit_in_hand = ev = await self._alert_log.get()
            delay, max_delay = AUDIT_RETRY_S
            while True:
                try:
                    await self._save(ev)
                    break
                except StoreError as exc:
                    self.counters["audit_write_retries"] += 1
                    log.error("alarm audit write failed (%s); %d events waiting, retrying in %.1f s", exc, self._alert_log.qsize() + 1, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, max_delay)
            self._audit_in_hand = None

    async def _save(self, ev: Persisted) -> None:
        if isinstance(ev, tuple):
            await self.store.save_gap(*ev)
        elif isinstance(ev, AgentRecord):
            if ev.forget:
                await self.store.forget_agent(ev.agent)
            else:
                await self.store.save_agent(ev.agent, ev.ward, list(ev.beds))
        else:
            await self.store.save_alert(ev.alert.to_json(), ev.event, ev.by, ev.alert.updated, ev.note)

    # --- edge input --------------------------------------------------------------

    def hello(self, h: Hello) -> int:
        """Register an agent's beds; returns the highest durably stored sequence of this epoch."""
        now = self.clock()
        tag = getattr(self.store, "set_bed_tags", None)  # stores that tag series by ward
        for bed in h.beds:
            row = self.state.row(bed, ward=h.ward, agent=h.agent)
            self._dirty.add(row)
            self.watched_since[row] = now
            if tag is not None:
                tag(bed, ward=h.ward)
        self.seqs.raise_floor(h.agent, h.epoch, h.floor)
        # the agent re-sends its whole device picture after every hello: forget the old one, or a restarted
        # agent's stale conditions would never clear
        beds = set(h.beds)
        for key in [k for k in self.device_status if k[0] in beds]:
            del self.device_status[key]
        self._returning.discard(h.agent)
        self._no_grace.pop(h.agent, None)
        self.agents_online[h.agent] += 1
        self.agent_wards[h.agent] = h.ward
        self.agent_offline_since.pop(h.agent, None)
        if self.known_agents.get(h.agent) != (h.ward, tuple(h.beds)):
            self.known_agents[h.agent] = (h.ward, tuple(h.beds))
            self._persist(AgentRecord(h.agent, h.ward, tuple(h.beds)))
        self._wake.set()
        return self.seqs.last_durable(h.agent, h.epoch)

    def goodbye(self, h: Hello) -> None:
        self.agents_online[h.agent] -= 1
        if self.agents_online[h.agent] <= 0:
            del self.agents_online[h.agent]
            self.agent_offline_since[h.agent] = self.clock()
        self._dirty.update(self.state.index[bed] for bed in h.beds)
        self._wake.set()

    def forget_agent(self, agent: str) -> None:
        """Stop expecting an agent that is not connected: its offline alarm clears, a restart does not await it.

        Raises ``KeyError`` for an agent the hub does not know and ``ValueError`` for one that is connected.
        """
        if agent not in self.known_agents and agent not in self.agent_wards:
            raise KeyError(agent)
        if agent in self.agents_online:
            raise ValueError(f"agent {agent!r} is connected")
        self.known_agents.pop(agent, None)
        self.agent_wards.pop(agent, None)
        self.agent_offline_since.pop(agent, None)
        self.spool.pop(agent, None)
        self._returning.discard(agent)
        self._no_grace.pop(agent, None)
        for row, info in enumerate(self.state.beds):
            if info.agent == agent:  # its beds stay on the census with no agent: nothing watches them, nothing alarms
                info.agent = ""
                self._dirty.add(row)
                for key in [k for k in self.device_status if k[0] == info.bed]:
                    del self.device_status[key]
        self._persist(AgentRecord(agent, forget=True))
        self._wake.set()

    def agents_json(self) -> list[dict[str, Any]]:
        """Every agent the hub expects or has seen: ward, beds, connected, offline since (ms, or None)."""
        names = sorted(set(self.known_agents) | set(self.agent_wards))
        return [{"agent": a, "ward": self.agent_wards.get(a, self.known_agents.get(a, ("", ()))[0]),
                 "beds": list(self.known_agents.get(a, ("", ()))[1]), "online": a in self.agents_online,
                 "offline_since": self.agent_offline_since.get(a)} for a in names]  # fmt: skip

    def _persist(self, item: Persisted) -> None:
        try:
            self._alert_log.put_nowait(item)
        except asyncio.QueueFull:
            self.counters["alert_log_overflow"] += 1
            log.error("audit queue full: %r not persisted", item)

    def agent_status(self, h: Hello, status: Status) -> None:
        """An agent's report: device conditions, and its spool (drops raise a technical alarm)."""
        now = self.clock()
        for d in status.devices:
            if h.beds and d["bed"] not in h.beds:
                continue
            key = (d["bed"], d["device"], d["detail"])  # a device reports conditions per subject (group, parameter)
            if d["status"] == "ok":
                self.device_status.pop(key, None)
            elif key in self.device_status or len(self.device_status) < MAX_DEVICE_CONDITIONS:
                self.device_status[key] = d | {"ward": h.ward}
            else:
                self.counters["device_conditions_refused"] += 1
        if status.spool is not None:
            self.seqs.raise_floor(h.agent, h.epoch, status.spool.get("floor", 0))
            prev = self.spool.get(h.agent)
            grew = prev[2] if prev else 0
            if status.spool.get("dropped_frames", 0) > (prev[0].get("dropped_frames", 0) if prev else 0):
                grew = now
            self.spool[h.agent] = (status.spool, now, grew)
        self.counters["agent_status_reports"] += 1

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
        self._persist((bed, prev, t_hub))

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
        n = self.state.n
        v = self.state.inputs_at(now, self._staleness_ms)
        c = COLUMN
        sbp = np.where(np.isnan(v[:, c["nibp_sys"]]), v[:, c["abp_sys"]], v[:, c["nibp_sys"]])
        hr = np.where(np.isnan(v[:, c["hr"]]), v[:, c["pr"]], v[:, c["hr"]])
        rr, acvpu = v[:, c["rr"]], v[:, c["acvpu"]]
        return Scores(
            inputs=v,
            news2=news2(rr=rr, spo2=v[:, c["spo2"]], o2=v[:, c["o2"]], sbp=sbp, hr=hr, acvpu=acvpu,
                        temp=v[:, c["temp"]], scale2=self.state.scale2[:n], tables=self.tables.news2),  # fmt: skip
            mews=mews(sbp=sbp, hr=hr, rr=rr, temp=v[:, c["temp"]], acvpu=acvpu, tables=self.tables.mews),
            qsofa=qsofa(rr=rr, sbp=sbp, acvpu=acvpu, tables=self.tables.qsofa),
        )

    def tick(self) -> None:
        now = self.clock()
        sc = self.score(now)
        n = self.state.n
        beds = self.state.beds
        names, wards = [b.bed for b in beds], [b.ward for b in beds]
        extra = [
            ScoreFlags("mews", sc.mews.triggered, sc.mews.partial, sc.mews.incomplete, f"MEWS ≥ {self.tables.mews.trigger}"),
            ScoreFlags("qsofa", sc.qsofa.positive, sc.qsofa.partial, sc.qsofa.incomplete, f"qSOFA positive (≥ {self.tables.qsofa.trigger})"),
        ]
        for ev in self.engine.evaluate(now, names, wards, sc.inputs, sc.news2, extra, self._technical_view(now, names, wards)):
            self._alert_event(ev)
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
        undelivered: dict[str, tuple[str, int, str]] = {}
        limit_ms = self.policy.defaults.undelivered_s * 1000
        for alert_id, t in self.pending_delivery.items():
            a = self.book.by_id.get(alert_id)
            if a is not None and now - t >= limit_ms and a.kind != "technical:undelivered":
                undelivered[a.bed or a.subject] = (a.ward, a.id, a.title)
        return TechnicalView(
            now=now,
            beds=names,
            wards=wards,
            agents=[b.agent for b in self.state.beds],
            last_rx=last_rx,
            watched_since=watched,
            flags=self.state.flags[:n],
            agents_offline={a: (self.agent_wards.get(a, ""), self._no_grace.get(a, max(t, self._grace_until)))
                            for a, t in self.agent_offline_since.items()},  # fmt: skip
            store_error=getattr(self.store, "error", None),
            undelivered=undelivered,
            devices_down=self._devices_down(),
            hold=self._restart_hold(now),
            spool_dropping={
                a: (self.agent_wards.get(a, ""), rep.get("dropped_frames", 0))
                for a, (rep, _t, grew) in self.spool.items()
                if grew and now - grew < SPOOL_DROP_HOLD_MS
            },
        )

    def _restart_hold(self, now: int) -> frozenset[str]:
        """Beds and agent subjects whose technical alarms hold: agents not yet back, during the restart grace."""
        if now >= self._grace_until or not self._returning:
            return frozenset()
        return frozenset(x for a in self._returning for x in (f"agent:{a}", *self.known_agents.get(a, ("", ()))[1]))

    def _devices_down(self) -> dict[str, tuple[str, tuple[str, ...], str]]:
        """Per bed: (ward, the devices reported disconnected, "device: subject, ...; device: ...")."""
        down: dict[str, tuple[str, dict[str, list[str]]]] = {}
        for (bed, device, subject), d in self.device_status.items():
            if d["status"] == "disconnected":
                down.setdefault(bed, (d["ward"], {}))[1].setdefault(device, []).append(subject or "device")
        return {bed: (ward, tuple(sorted(devs)), "; ".join(f"{dev}: {', '.join(sorted(subj))}" for dev, subj in sorted(devs.items())))
                for bed, (ward, devs) in down.items()}  # fmt: skip

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
            "online": info.agent in self.agents_online,
            "last_rx": info.last_rx,
            "settings": {"spo2_scale": info.spo2_scale},
            "vitals": self.state.vitals_of(i, now),
            "news2": sc.news2.row(i),
            "mews": sc.mews.row(i),
            "qsofa": sc.qsofa.row(i),
        }
        if rx_hub is not None:
            out["rx_hub"] = rx_hub
        return out

    def beds_json(self, ward: str | None = None) -> list[dict[str, Any]]:
        now = self.clock()
        sc = self.score(now)
        return [self.bed_json(i, now, sc) for i, b in enumerate(self.state.beds) if ward is None or b.ward == ward]

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
        self._persist(ev)

    def delivered(self, alert_ids: list[int]) -> None:
        """A console confirmed it received (and shows) these alarms."""
        for i in alert_ids:
            if self.pending_delivery.pop(i, None) is not None:
                self.counters["alert_deliveries_confirmed"] += 1

    def acknowledge(self, alert_id: int, by: str) -> dict[str, Any]:
        events = self.book.acknowledge(alert_id, by, self.clock())
        for ev in events:
            self._alert_event(ev)
        self.pending_delivery.pop(alert_id, None)
        return events[0].alert.to_json() if events else self.book.by_id[alert_id].to_json()

    def silence(self, alert_id: int, by: str, reason: str, duration_s: float) -> dict[str, Any]:
        ev = self.book.silence(alert_id, by, reason, duration_s, self.clock())
        self._alert_event(ev)
        return ev.alert.to_json()

    def set_spo2_scale(self, bed: str, scale: int) -> None:
        if bed not in self.state.index:
            raise KeyError(bed)
        self.state.set_scale(bed, scale)
        self._wake.set()

    def stats(self) -> dict[str, Any]:
        return {
            "counters": dict(self.counters),
            "beds": self.state.n,
            "agents_online": sorted(self.agents_online),
            "alerts_open": len(self.book.open),
            "push_latency_ms": self.push_latency.percentiles(),
            "consoles": len(self.feed.subscribers),
            "consoles_dropped": self.feed.dropped_consoles,
            "alerts_raised_by_kind": [{"kind": k, "count": n} for k, n in sorted(self.raised_by_kind.items())],
            "unmapped": self.unmapped.rows(),
            "store": self.store.stats(),
        }


__all__ = ["Hub", "AlertError", "wall_ms"]
