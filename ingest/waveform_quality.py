"""The hub's waveform analysis: each bed's ECG and pleth, judged every 2 s, for artefact-aware alarming.

Accepted waveform chunks are appended to a short ring buffer per bed and lead
(``add``, on the event loop: a copy into NumPy, nothing more). Every
``CADENCE_S`` the worker takes the last ``WINDOW_S`` of each lead that received
new samples and analyses all of them in ONE worker process
(``alerts.waveforms.quality``: beat detectors, signal quality indices, the
lead's rate), so neither ingest nor the tick waits for SciPy, and the analysis
never holds the hub's GIL (in a thread it did, and at 500 beds with 40 leads
the sample-to-console p99 went from 0.5 s to 1.5 s). A worker that dies is
replaced at the next round (counted); its round's verdicts are lost, not the
data. Rounds never
overlap: the next starts ``CADENCE_S`` after the last one ended, and a round
that took longer than the cadence is counted (``rounds_late``). Each verdict goes to the alarm engine
(``AlarmEngine.set_lead_quality``), and the rate each lead shows enters the bed
matrix as its own parameter (``hr_ecg``, ``pr_pleth``), flagged ``artefact``
when the window is poor: a derived value, it does not count as the monitor
being heard from. A lead whose chunks stop is simply no longer analysed; the
engine treats its last verdict as stale after the policy's ``stale_s``.

A gap in a lead (a chunk that does not follow on from the last in device time)
starts its buffer again, so a window never joins samples across a gap.

The worker never outlives the hub: on the way out the hub stops it, and the
worker itself watches its parent and exits within ``ORPHAN_CHECK_S`` once the
hub is gone, however it went (a SIGKILL, a crash): a stopped hub left its
worker (about 110 MiB) and multiprocessing's resource tracker running.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import numpy as np

from alerts.lead_quality import ECG, PLETH, LeadQuality
from wire.messages import Observation, WaveChunk
from wire.vocabulary import Flag

log = logging.getLogger(__name__)

CADENCE_S = 2.0
WINDOW_S = 10.0
KEEP_S = 12.0  # per lead: the window and a little more
GAP_MS = 250  # a chunk starting later than this after the last one's end starts the buffer again
LEADS = {"ecg_ii": (ECG, "hr_ecg"), "pleth": (PLETH, "pr_pleth")}  # lead -> (signal, derived parameter)
SOURCE = "hub-waveform"
ORPHAN_CHECK_S = 0.5


@dataclass(slots=True)
class _Lead:
    rate_hz: int
    buf: np.ndarray
    n: int = 0  # samples held (<= len(buf))
    t_end: int = 0  # device time just after the last sample, ms
    fresh: bool = False  # new samples since the last analysis

    def append(self, x: np.ndarray) -> None:
        cap = len(self.buf)
        if len(x) >= cap:
            self.buf[:] = x[-cap:]
            self.n = cap
            return
        keep = min(self.n, cap - len(x))
        self.buf[:keep] = self.buf[self.n - keep : self.n]
        self.buf[keep : keep + len(x)] = x
        self.n = keep + len(x)


@dataclass(frozen=True, slots=True)
class _Job:
    bed: str
    lead: str
    samples: np.ndarray
    rate_hz: int
    t_end: int


@dataclass
class WaveformQuality:
    """Buffers and the analysis loop; ``deliver(bed, quality, derived_observation)`` runs on the event loop."""

    deliver: Callable[[str, LeadQuality, Observation], None]
    cadence_s: float = CADENCE_S
    leads: dict[tuple[str, str], _Lead] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)
    in_process: bool = False  # ``run`` sets it: rounds go to the worker process (a test calling ``round`` uses a thread)
    _pool: ProcessPoolExecutor | None = None

    def add(self, w: WaveChunk) -> None:
        """Buffer an accepted chunk of a lead the analysis knows (others are ignored)."""
        if w.lead not in LEADS or w.rate_hz <= 0 or not w.samples:
            return
        key = (w.bed, w.lead)
        lead = self.leads.get(key)
        if lead is None or lead.rate_hz != w.rate_hz:
            lead = self.leads[key] = _Lead(w.rate_hz, np.zeros(int(KEEP_S * w.rate_hz), dtype=np.float64))
        elif w.t_first < lead.t_end - GAP_MS or w.t_first > lead.t_end + GAP_MS:
            lead.n = 0  # out of order, or after a gap: start again rather than join across it
            self.counters["restarted"] += 1
        lead.append(np.asarray(w.samples, dtype=np.float64) * w.scale)
        lead.t_end = w.t_first + round(len(w.samples) * 1000 / w.rate_hz)
        lead.fresh = True

    def forget(self, bed: str) -> None:
        for lead in LEADS:
            self.leads.pop((bed, lead), None)

    def due(self) -> list[_Job]:
        """Copies of every lead's last window that has new samples and a full window."""
        jobs = []
        for (bed, lead_key), lead in self.leads.items():
            need = int(WINDOW_S * lead.rate_hz)
            if not lead.fresh or lead.n < need:
                continue
            lead.fresh = False
            jobs.append(_Job(bed, lead_key, lead.buf[lead.n - need : lead.n].copy(), lead.rate_hz, lead.t_end))
        return jobs

    async def run(self) -> None:
        """Analyse every ``cadence_s`` in a worker process until cancelled (the worker is stopped on the way out)."""
        self.in_process = True
        try:
            while True:
                await asyncio.sleep(self.cadence_s)
                await self.round()
        finally:
            if self._pool is not None:
                workers = list(getattr(self._pool, "_processes", {}).values())  # the executor has no public handle on them
                self._pool.shutdown(wait=False, cancel_futures=True)
                for worker in workers:
                    worker.terminate()  # SIGTERM: the analysis holds nothing that must be saved
                self._pool = None

    def _worker(self) -> ProcessPoolExecutor:
        if self._pool is None:  # spawned, not forked: the hub has threads, and a fork would copy their locks
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=exit_with_parent, initargs=(os.getpid(),))  # fmt: skip
        return self._pool

    async def round(self) -> None:
        jobs = self.due()
        if not jobs:
            return
        t0 = time.monotonic()
        if not self.in_process:
            results = await asyncio.to_thread(analyse_all, jobs)
        else:
            try:
                results = await asyncio.get_running_loop().run_in_executor(self._worker(), analyse_all, jobs)
            except BrokenProcessPool:
                log.error("the waveform analysis worker died; a new one takes the next round (this round's %d windows are not judged)", len(jobs))
                self.counters["worker_restarts"] += 1
                self._pool = None
                return
        self.counters["rounds"] += 1
        if time.monotonic() - t0 > self.cadence_s:
            self.counters["rounds_late"] += 1
        for job, quality, cpu_s in results:
            self.counters["windows"] += 1
            self.counters[f"cpu_us_{LEADS[job.lead][0]}"] += round(cpu_s * 1e6)
            if quality is None:
                self.counters["windows_refused"] += 1
                continue
            param = LEADS[job.lead][1]
            flags = 0 if quality.good else int(Flag.ARTEFACT)
            obs = Observation(job.bed, param, None if quality.rate is None else round(quality.rate, 1), job.t_end, job.t_end, SOURCE, flags)
            self.deliver(job.bed, quality, obs)


def exit_with_parent(parent: int) -> None:
    """In the worker, at its start: a thread that ends the worker once its parent, the hub, is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(ORPHAN_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-hub", daemon=True).start()


def analyse_all(jobs: list[_Job]) -> list[tuple[_Job, LeadQuality | None, float]]:
    """In the worker thread: each job's verdict (None when the analysis refuses the window) and its CPU time."""
    from alerts.waveforms.quality import WaveformInputError, analyse_ecg, analyse_pleth  # SciPy: only on a hub that gets waveforms

    out = []
    for job in jobs:
        t0 = time.thread_time()
        try:
            analyse = analyse_ecg if LEADS[job.lead][0] == ECG else analyse_pleth
            quality: LeadQuality | None = analyse(job.samples, float(job.rate_hz), job.t_end)
        except WaveformInputError as exc:
            log.warning("waveform analysis of %s %s refused its window: %s", job.bed, job.lead, exc)
            quality = None
        out.append((job, quality, time.thread_time() - t0))
    return out
