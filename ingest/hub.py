"""The hub's core: takes decoded edge frames in, keeps the bed-state matrix, scores, alarms, pushes.

Transport-free: the FastAPI layer (``ingest.app``) feeds it frames and drains
its console feed. One ``tick`` runs the vectorised NEWS2 pass over every bed,
reconciles alarms, and pushes changed beds; ticks run shortly after new data
arrives (``min_tick_ms``) and at least every ``max_tick_ms`` so staleness shows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from alerts.lifecycle import AlarmBook, AlertError, AlertEvent
from alerts.news2 import News2Result, news2
from alerts.score_alerts import KIND as NEWS2_KIND
from alerts.score_alerts import news2_conditions
from ingest.bed_state import BedState
from ingest.console_feed import ConsoleFeed
from ingest.dedup import SeqTracker
from ingest.hub_config import HubConfig
from ingest.latency import LatencyRecorder
from ingest.store import Batch, Store
from wire.messages import Hello, ObsFrame, Observation, WaveChunk
from wire.screen import screen
from wire.vocabulary import COLUMN, LEAD_BY_KEY

log = logging.getLogger(__name__)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Hub:
    def __init__(self, cfg: HubConfig, store: Store, clock: Callable[[], int] = wall_ms) -> None:
        self.cfg = cfg
        self.store = store
        self.clock = clock
        self.state = BedState()
        self.book = AlarmBook()
        self.feed = ConsoleFeed()
        self.seqs = SeqTracker()
        self.counters: Counter[str] = Counter()
        self.push_latency = LatencyRecorder()  # hub arrival -> queued to consoles, ms
        self.agents_online: Counter[str] = Counter()
        self._staleness_ms = cfg.staleness_ms()
        self._pending_since: dict[int, int] = {}  # bed row -> earliest hub arrival not yet pushed
        self._dirty: set[int] = set()  # bed rows to push for other reasons (agent came or went)
        self._last_news2: tuple[np.ndarray, ...] | None = None
        self._wake = asyncio.Event()
        self._alert_log: asyncio.Queue[AlertEvent] = asyncio.Queue(maxsize=10_000)

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        await self.store.start()
        self.seqs = SeqTracker(await self.store.last_seqs())
        self.book = AlarmBook(next_id=await self.store.max_alert_id() + 1)
        self.book.restore(await self.store.open_alerts())

    async def run(self) -> None:
        """Run the tick loop and the alert persister until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._tick_loop(), name="hub-ticks")
            tg.create_task(self._persist_alerts(), name="hub-alert-log")

    async def stop(self) -> None:
        while not self._alert_log.empty():
            ev = self._alert_log.get_nowait()
            await self.store.save_alert(ev.alert.to_json(), ev.event, ev.by, ev.alert.updated)
        await self.store.stop()

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
        while True:
            ev = await self._alert_log.get()
            await self.store.save_alert(ev.alert.to_json(), ev.event, ev.by, ev.alert.updated)

    # --- edge input --------------------------------------------------------------

    def hello(self, h: Hello) -> int:
        """Register an agent's beds; returns the highest durably stored sequence of this epoch."""
        for bed in h.beds:
            self._dirty.add(self.state.row(bed, ward=h.ward, agent=h.agent))
        self.agents_online[h.agent] += 1
        self._wake.set()
        return self.seqs.last_durable(h.agent, h.epoch)

    def goodbye(self, h: Hello) -> None:
        self.agents_online[h.agent] -= 1
        if self.agents_online[h.agent] <= 0:
            del self.agents_online[h.agent]
        self._dirty.update(self.state.index[bed] for bed in h.beds)
        self._wake.set()

    def take_frame(self, h: Hello, msg: ObsFrame | WaveChunk, t_hub: int) -> tuple[Batch | None, list[dict[str, Any]]]:
        """Screen a decoded data frame. Returns the batch to store (None for a duplicate) and rejections."""
        if not self.seqs.is_new(h.agent, h.epoch, msg.seq):
            self.counters["frames_duplicate"] += 1
            return None, []
        self.seqs.accept(h.agent, h.epoch, msg.seq)
        self.counters["frames_ingested"] += 1
        batch = Batch(agent=h.agent, epoch=h.epoch, seq=msg.seq)
        rejected: list[dict[str, Any]] = []
        if isinstance(msg, WaveChunk):
            reason = self._screen_wave(h, msg, t_hub)
            if reason:
                rejected.append({"bed": msg.bed, "lead": msg.lead, "reason": reason})
            else:
                batch.waves.append(msg)
                self.counters["wave_chunks_accepted"] += 1
        else:
            for idx, o in enumerate(msg.obs):
                reason = self._screen_obs(h, o, t_hub)
                if reason:
                    rejected.append({"index": idx, "bed": o.bed, "param": o.param, "reason": reason})
                    continue
                batch.obs.append(o)
                row = self.state.apply(o, t_hub=t_hub, agent=h.agent)
                if row is not None:
                    self._pending_since.setdefault(row, t_hub)
            self.counters["obs_accepted"] += len(batch.obs)
            if batch.obs:
                self._wake.set()
        self.counters["obs_rejected"] += len(rejected)
        return batch, rejected

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

    def stored(self, batch: Batch) -> None:
        self.seqs.stored(batch.agent, batch.epoch, batch.seq)

    # --- scoring and push --------------------------------------------------------

    def score(self, now: int) -> News2Result:
        """NEWS2 for every bed in one vectorised pass over the bed-state matrix."""
        n = self.state.n
        v = self.state.inputs_at(now, self._staleness_ms)
        c = COLUMN
        sbp = np.where(np.isnan(v[:, c["nibp_sys"]]), v[:, c["abp_sys"]], v[:, c["nibp_sys"]])
        hr = np.where(np.isnan(v[:, c["hr"]]), v[:, c["pr"]], v[:, c["hr"]])
        return news2(
            rr=v[:, c["rr"]],
            spo2=v[:, c["spo2"]],
            o2=v[:, c["o2"]],
            sbp=sbp,
            hr=hr,
            acvpu=v[:, c["acvpu"]],
            temp=v[:, c["temp"]],
            scale2=self.state.scale2[:n],
        )

    def tick(self) -> None:
        now = self.clock()
        res = self.score(now)
        beds = self.state.beds
        conds = news2_conditions(res, [b.bed for b in beds], [b.ward for b in beds], self.cfg.news2_alarms)
        for ev in self.book.reconcile(NEWS2_KIND, conds, now):
            self._alert_event(ev)
        changed = set(self._pending_since) | self._dirty
        changed.update(self._news2_changed(res).tolist())
        if not changed:
            return
        pending, self._pending_since, self._dirty = self._pending_since, {}, set()
        out = [self.bed_json(i, now, res, rx_hub=pending.get(i)) for i in sorted(changed)]
        self.feed.publish_beds(now, out)
        pushed = self.clock()
        self.push_latency.extend([pushed - t for t in pending.values()])
        self.counters["bed_updates_pushed"] += len(out)

    def _news2_changed(self, res: News2Result) -> np.ndarray:
        cur = (res.partial, res.band, res.incomplete, np.nan_to_num(res.subscores, nan=-1.0))
        prev, self._last_news2 = self._last_news2, cur
        n = len(res.partial)
        if prev is None or len(prev[0]) != n:
            return np.arange(n)
        diff = (cur[0] != prev[0]) | (cur[1] != prev[1]) | (cur[2] != prev[2]) | (cur[3] != prev[3]).any(axis=1)
        return np.flatnonzero(diff)

    def bed_json(self, i: int, now: int, res: News2Result, *, rx_hub: int | None = None) -> dict[str, Any]:
        info = self.state.beds[i]
        out: dict[str, Any] = {
            "bed": info.bed,
            "ward": info.ward,
            "agent": info.agent,
            "online": info.agent in self.agents_online,
            "last_rx": info.last_rx,
            "settings": {"spo2_scale": info.spo2_scale},
            "vitals": self.state.vitals_of(i, now),
            "news2": res.row(i),
        }
        if rx_hub is not None:
            out["rx_hub"] = rx_hub
        return out

    def beds_json(self, ward: str | None = None) -> list[dict[str, Any]]:
        now = self.clock()
        res = self.score(now)
        return [self.bed_json(i, now, res) for i, b in enumerate(self.state.beds) if ward is None or b.ward == ward]

    # --- alerts --------------------------------------------------------------------

    def _alert_event(self, ev: AlertEvent) -> None:
        self.counters[f"alerts_{ev.event}"] += 1
        self.feed.publish({"type": "alert", "event": ev.event, "alert": ev.alert.to_json()}, ward=ev.alert.ward)
        try:
            self._alert_log.put_nowait(ev)
        except asyncio.QueueFull:
            self.counters["alert_log_overflow"] += 1
            log.error("alert audit queue full; event %s of alert %d not persisted", ev.event, ev.alert.id)

    def acknowledge(self, alert_id: int, by: str) -> dict[str, Any]:
        ev = self.book.acknowledge(alert_id, by, self.clock())
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
            "store": self.store.stats(),
        }


__all__ = ["Hub", "AlertError", "wall_ms"]
