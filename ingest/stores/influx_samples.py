"""The InfluxDB sample store: vitals, waveform chunks, unmapped observations, scores and alarm events.

Implements ``ingest.stores.base.SampleStore``; the hub's state (alarms, audit,
watermarks) lives in the SQLite state store it is given. ``submit`` encodes a batch to line protocol
(``ingest.influx_schema``) and queues it in a bounded buffer, counted in lines;
when the buffer is full ``submit`` waits, so the hub stops reading edge sockets
and stops acknowledging instead of growing memory. One writer task sends the
buffer in requests of up to ``batch_lines`` lines / ``batch_bytes`` bytes, or
whatever is there after ``flush_ms``, gzip-compressed, in order:

- 2xx: written. The batches' durable watermarks (``Batch.mark`` per agent and
  epoch) are then committed to the state store, and only then do the batches'
  futures complete, i.e. the hub acknowledges them.
  A crash between the two re-sends frames whose points are already stored: they
  overwrite (same tags, same device time), so replays never duplicate.
- connection error, timeout, 5xx, 429, 401/403/404: retried with exponential
  backoff and jitter, for as long as it takes (data is never dropped for these);
  a 404 "database not found" also re-creates the database when we manage it.
- other 4xx (poison: a field type conflict, a point outside retention): InfluxDB
  1.x writes the good lines and reports ``dropped=N``; otherwise the request is
  split in halves to isolate the bad lines. Dropped lines are logged and counted,
  the batches count as handled (acknowledged), and later writes go on.
- 413: split in halves and sent again.

``start`` does not wait for InfluxDB (the hub serves live data during an
outage). On InfluxDB 1.x (``manage_retention``) the writer first creates the
database, the raw retention policy (default 7 days, the default policy) and a
long-lived one for 1-minute aggregates filled by continuous queries, retrying
until InfluxDB answers, idempotently at every start; points that arrive too
late for the continuous queries (replays after an outage) are aggregated by a
backfill query after they are written. ``trend`` is one round trip: raw points
for short ranges, 1-minute means for long ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from ingest import influx_schema as schema
from ingest.influx_config import InfluxConfig, duration_ms
from ingest.influx_http import InfluxHttp, Outcome, QueryError, WriteResult
from ingest.line_protocol import LineProtocolError, unquote_tag_value
from ingest.score_log import ScoreRecord
from ingest.stores.base import Batch, StateStore, StoreError, TrendPoint
from wire.clock import wall_ms

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
MAX_SERIES_CACHE = 200_000  # cached line heads (one per bed x device x param)
MAX_SPLIT_REQUESTS = 64  # requests spent isolating poison lines in one rejected request
ERROR_AFTER_FAILURES = 3  # consecutive failed attempts before ``error`` reports the store as failing
BACKFILL_EVERY_S = 5.0  # late-data aggregation runs at most this often while writes keep coming


@dataclass(slots=True)
class _Entry:
    """One submitted batch (or bare lines) waiting in the buffer, with its durability future."""

    lines: list[str]
    nbytes: int
    fut: asyncio.Future[None]
    batch: Batch | None
    t_min: int | None  # earliest and latest timestamps among its lines (for late-data backfill)
    t_max: int | None
    queued_at: float = field(default_factory=time.monotonic)


class InfluxSampleStore:
    def __init__(self, cfg: InfluxConfig, state: StateStore, *, clock=wall_ms) -> None:
        self.cfg = cfg
        self.clock = clock
        self.state = state  # where the batches' watermarks go once their lines are written
        self._http: InfluxHttp | None = None
        self._buffer: deque[_Entry] = deque()
        self._buffered_lines = 0
        self._buffered_bytes = 0
        self._space = asyncio.Condition()
        self._work = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._stopping = False
        self._failed: BaseException | None = None
        self._places: dict[str, schema.Place] = {}
        self._default_place = schema.Place(hospital=cfg.hospital)
        self._series: dict[tuple[str, str, str], str] = {}
        self._late: tuple[int, int] | None = None  # minutes [lo, hi) whose aggregates need recomputing
        self._last_backfill = 0.0
        self.counters: Counter[str] = Counter()
        self._up = 0
        self._error: str | None = None

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Start the writer (the state store is already open). Does not wait for InfluxDB: the hub serves live
        data while InfluxDB is away, and the writer sets the database up once it answers."""
        self._http = InfluxHttp(self.cfg)
        self._writer = asyncio.create_task(self._run(), name="influx-writer")
        self._writer.add_done_callback(self._writer_done)

    async def _prepare_database(self) -> None:
        """Database, retention policies and continuous queries, idempotently; waits (with backoff) for InfluxDB.

        A statement the server refuses (e.g. a user without admin rights) is logged and counted in
        ``setup_errors``; writing goes on, since the database may well have been set up by hand.
        """
        attempt = 0
        while True:
            try:
                await self._setup_statements()
                self._up = 1
                return
            except QueryError as exc:
                self.counters["setup_errors"] += 1
                log.error("InfluxDB refused the retention set-up (%s); writing without it", exc)
                return
            except httpx.HTTPError as exc:
                self._up = 0
                self.counters["retried"] += 1
                delay = self._backoff(attempt)
                attempt += 1
                log.warning("InfluxDB at %s not reachable for set-up (%s); retrying in %.1f s", self.cfg.base_url, exc, delay)
                await asyncio.sleep(delay)

    async def _setup_statements(self) -> None:
        cfg, http = self.cfg, self._require_http()
        db = schema.ql_ident(cfg.db)
        await http.query(f"CREATE DATABASE {db}", db=False)
        shown = await http.query(f"SHOW RETENTION POLICIES ON {db}", db=False)
        existing = {row[0]: row for row in (shown[0].get("series") or [{}])[0].get("values", [])}
        for name, duration, default in ((cfg.raw_rp, cfg.raw_retention, True), (cfg.agg_rp, cfg.agg_retention, False)):
            verb = "ALTER" if name in existing else "CREATE"
            shard = "1d" if duration != "INF" and duration_ms(duration) <= 14 * 86_400_000 else "7d"
            stmt = f"{verb} RETENTION POLICY {schema.ql_ident(name)} ON {db} DURATION {duration} REPLICATION 1 SHARD DURATION {shard}"
            await http.query(stmt + (" DEFAULT" if default else ""), db=False)
        shown = await http.query("SHOW CONTINUOUS QUERIES", db=False)
        have: set[str] = set()
        for series in shown[0].get("series", []):
            if series.get("name") == cfg.db:
                have.update(row[0] for row in series.get("values", []))
        for name, select in schema.downsample_selects(cfg.db, cfg.raw_rp, cfg.agg_rp).items():
            if name in have:
                await http.query(f"DROP CONTINUOUS QUERY {schema.ql_ident(name)} ON {db}", db=False)
            await http.query(schema.continuous_query(name, cfg.db, select, cfg.resample_for), db=False)

    async def stop(self) -> None:
        """Flush what is queued (retrying for up to ``stop_timeout_s``), then close."""
        if self._writer is not None:
            self._stopping = True
            self._work.set()
            await self._wake_submitters()  # a submit waiting for space gives up: its frame stays unacknowledged
            done, _ = await asyncio.wait({self._writer}, timeout=self.cfg.stop_timeout_s)
            if not done:
                log.error("InfluxDB store stopping with %d lines unwritten; their frames stay unacknowledged", self._buffered_lines)
                self._writer.cancel()
                await asyncio.wait([self._writer])  # its end, without swallowing a cancellation of stop() itself
            self._writer = None
            self._fail_pending(StoreError("store stopped before these lines reached InfluxDB"))
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @property
    def error(self) -> str | None:
        """Why InfluxDB is not taking writes right now (the hub raises a technical alarm), or None."""
        if self._failed is not None:
            return f"InfluxDB writer failed: {self._failed}"
        return self._error

    def _writer_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("InfluxDB writer failed: %r", exc)
            self._failed = exc
            self._fail_pending(StoreError(f"InfluxDB writer failed: {exc}"))
            task.get_loop().create_task(self._wake_submitters())

    async def _wake_submitters(self) -> None:
        async with self._space:
            self._space.notify_all()

    def _fail_pending(self, exc: BaseException) -> None:
        while self._buffer:
            entry = self._buffer.popleft()
            if not entry.fut.done():
                entry.fut.set_exception(exc)
        self._buffered_lines = self._buffered_bytes = 0

    def _require_http(self) -> InfluxHttp:
        if self._http is None:
            raise StoreError("InfluxDB store not started")
        return self._http

    # --- tags ----------------------------------------------------------------------

    def set_bed_tags(self, bed: str, *, ward: str | None = None, hospital: str | None = None) -> None:
        """Hospital and ward tags for a bed's future points (keep them stable: tags are part of a series)."""
        old = self._places.get(bed, self._default_place)
        new = schema.Place(hospital=old.hospital if hospital is None else hospital, ward=old.ward if ward is None else ward)
        if new != old:
            self._places[bed] = new
            self._series.clear()

    def _series_head(self, bed: str, device: str, param: str) -> str:
        key = (bed, device, param)
        head = self._series.get(key)
        if head is None:
            if len(self._series) >= MAX_SERIES_CACHE:
                self._series.clear()
            head = schema.vitals_series(self._places.get(bed, self._default_place), bed, device, param)
            self._series[key] = head
        return head

    # --- writing -------------------------------------------------------------------

    def encode(self, batch: Batch) -> list[str]:
        """Line protocol for a batch. Unencodable rows are counted as dropped, logged and left out."""
        lines: list[str] = []
        for o in batch.obs:
            self._encode_one(lines, "dropped", lambda o=o: schema.vitals_line(self._series_head(o.bed, o.device, o.param), o),
                             lambda o=o: f"observation {o.bed}/{o.param} at {o.t_dev}")  # fmt: skip
        for w in batch.waves:
            self._encode_one(lines, "dropped", lambda w=w: schema.waveform_line(self._place(w.bed), w),
                             lambda w=w: f"waveform chunk {w.bed}/{w.lead} at {w.t_first}")  # fmt: skip
        for u in batch.unmapped:
            self._encode_one(lines, "dropped", lambda u=u: schema.unmapped_line(self._place(u.bed), u),
                             lambda u=u: f"unmapped observation {u.device}/{u.system} {u.code} at {u.t_dev}")  # fmt: skip
        return lines

    def _encode_one(self, lines: list[str], dropped: str, make: Callable[[], str], what: Callable[[], str]) -> None:
        """Append ``make()``; a row line protocol cannot carry is logged and counted in ``encode_errors`` and ``dropped``."""
        try:
            lines.append(make())
        except LineProtocolError as exc:
            self.counters["encode_errors"] += 1
            self.counters[dropped] += 1
            log.error("%s cannot be written: %s", what(), exc)

    def _place(self, bed: str) -> schema.Place:
        return self._places.get(bed, self._default_place)

    async def submit(self, batch: Batch) -> asyncio.Future[None]:
        return await self._enqueue(self.encode(batch), batch)

    async def write(self, batch: Batch) -> None:
        await (await self.submit(batch))

    def record_scores(self, records: list[ScoreRecord]) -> None:
        lines: list[str] = []
        for r in records:
            self._encode_one(lines, "scores_dropped", lambda r=r: schema.score_line(r.score, self._place(r.bed), r.bed, r.t, r.row, scale=r.scale),
                             lambda r=r: f"{r.score} of bed {r.bed} at {r.t}")  # fmt: skip
        if self._enqueue_nowait(lines, "scores"):
            self.counters["scores_queued"] += len(lines)

    def record_alarm_event(self, alert: dict, event: str, by: str | None, at: int) -> None:
        """An ``alarm_event`` point for dashboards (the audit trail itself is in the state store)."""
        lines: list[str] = []
        self._encode_one(lines, "alarm_events_dropped", lambda: schema.alarm_event_line(self._place(str(alert.get("bed") or "")), alert, event, by, at),
                         lambda: f"alarm event {event} of alarm {alert.get('id')}")  # fmt: skip
        if self._enqueue_nowait(lines, "alarm_events"):
            self.counters["alarm_events_queued"] += 1

    def _enqueue_nowait(self, lines: list[str], what: str) -> bool:
        """Queue derived lines (scores, alarm events) without waiting: if the buffer is full or the writer
        is not running they are dropped and counted in ``<what>_dropped``. The tick never waits on the store."""
        if not lines:
            return False
        n = len(lines)
        if self._writer is None or self._stopping or self._failed is not None or self._buffered_lines + n > self.cfg.max_buffer_lines:
            self.counters[f"{what}_dropped"] += n
            return False
        self._append(list(lines), None).add_done_callback(lambda f: self._derived_done(f, what, n))
        return True

    def _derived_done(self, fut: asyncio.Future[None], what: str, n: int) -> None:
        if fut.cancelled() or fut.exception() is not None:
            self.counters[f"{what}_dropped"] += n

    async def submit_lines(self, lines: list[str]) -> asyncio.Future[None]:
        """Queue ready-made lines (e.g. ``influx_schema.news2_line``) through the same buffer and backpressure."""
        return await self._enqueue(list(lines), None)

    async def _enqueue(self, lines: list[str], batch: Batch | None) -> asyncio.Future[None]:
        if self._writer is None or self._stopping:
            raise StoreError("InfluxDB store is not running")
        if self._failed is not None:
            raise StoreError(f"InfluxDB writer failed: {self._failed}")
        n = len(lines)
        async with self._space:
            if self._buffered_lines and self._buffered_lines + n > self.cfg.max_buffer_lines:
                self.counters["backpressure_waits"] += 1
                await self._space.wait_for(
                    lambda: self._failed is not None
                    or self._stopping
                    or not self._buffered_lines
                    or self._buffered_lines + n <= self.cfg.max_buffer_lines
                )
                if self._failed is not None:
                    raise StoreError(f"InfluxDB writer failed: {self._failed}")
                if self._stopping:
                    raise StoreError("InfluxDB store is stopping")
        return self._append(lines, batch)

    def _append(self, lines: list[str], batch: Batch | None) -> asyncio.Future[None]:
        """Put an entry in the buffer (the caller has checked its room); wakes the writer when a request is ready."""
        n = len(lines)
        nbytes = sum(len(line) for line in lines) + n
        times = [t for t in map(_line_time, lines) if t is not None]
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer.append(_Entry(lines, nbytes, fut, batch, min(times, default=None), max(times, default=None)))
        self._buffered_lines += n
        self._buffered_bytes += nbytes
        if self._buffered_lines >= self.cfg.batch_lines or self._buffered_bytes >= self.cfg.batch_bytes or len(self._buffer) == 1:
            self._work.set()
        return fut

    async def _run(self) -> None:
        if self.cfg.manage_retention:
            await self._prepare_database()
        while True:
            await self._wait_for_work()
            if not self._buffer:
                if self._stopping:
                    return
                continue
            chunk = self._take_chunk()
            await self._write_entries(chunk)
            await self._finish(chunk)
            if self._late is not None and (not self._buffer or time.monotonic() - self._last_backfill >= BACKFILL_EVERY_S):
                await self._backfill()

    async def _wait_for_work(self) -> None:
        """Until a full request's worth is buffered, the oldest line is ``flush_ms`` old, or we are stopping."""
        while True:
            if self._stopping or self._buffered_lines >= self.cfg.batch_lines or self._buffered_bytes >= self.cfg.batch_bytes:
                return
            if self._buffer:
                wait = self._buffer[0].queued_at + self.cfg.flush_ms / 1000 - time.monotonic()
                if wait <= 0:
                    return
            else:
                wait = None
            self._work.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):  # not wait_for: on 3.11 it can swallow a cancellation
                    await self._work.wait()

    def _take_chunk(self) -> list[_Entry]:
        """Whole entries from the front of the buffer, up to one request's lines and bytes (at least one entry)."""
        chunk: list[_Entry] = []
        lines = nbytes = 0
        for entry in self._buffer:
            if chunk and (lines + len(entry.lines) > self.cfg.batch_lines or nbytes + entry.nbytes > self.cfg.batch_bytes):
                break
            chunk.append(entry)
            lines += len(entry.lines)
            nbytes += entry.nbytes
        return chunk

    async def _write_entries(self, chunk: list[_Entry]) -> None:
        lines = [line for entry in chunk for line in entry.lines]
        if lines:
            budget = [MAX_SPLIT_REQUESTS]
            await self._write_lines(lines, budget)
        self.counters["numerics_written"] += sum(len(e.batch.obs) for e in chunk if e.batch is not None)
        self.counters["wave_chunks_written"] += sum(len(e.batch.waves) for e in chunk if e.batch is not None)
        self.counters["unmapped_written"] += sum(len(e.batch.unmapped) for e in chunk if e.batch is not None)
        late = self._late_minutes(chunk)
        if late is not None:
            lo, hi = late
            self._late = (lo, hi) if self._late is None else (min(lo, self._late[0]), max(hi, self._late[1]))

    async def _write_lines(self, lines: list[str], budget: list[int]) -> None:
        """Write lines until InfluxDB has them or has refused them for good. Never gives up on retryable errors."""
        http = self._require_http()
        body = ("\n".join(lines) + "\n").encode()
        payload = await http.compress(body)
        attempt = 0
        while True:
            result = await http.write(payload)
            if result.outcome is Outcome.WRITTEN:
                self._up = 1
                self._error = None
                self.counters["writes"] += 1
                self.counters["written"] += len(lines)
                self.counters["bytes_sent"] += len(payload)
                self.counters["bytes_raw"] += len(body)
                return
            if result.outcome is Outcome.RETRY:
                self._up = 0
                self.counters["retried"] += 1
                if attempt + 1 >= ERROR_AFTER_FAILURES:
                    self._error = f"InfluxDB at {self.cfg.base_url} is not taking writes ({result.status or result.detail})"
                if result.status == 404 and self.cfg.manage_retention and "database not found" in result.detail:
                    with contextlib.suppress(QueryError, httpx.HTTPError):
                        await self._setup_statements()
                delay = self._backoff(attempt)
                attempt += 1
                log.warning("InfluxDB write of %d lines failed (%s %s); retry %d in %.2f s", len(lines), result.status, result.detail, attempt, delay)
                await asyncio.sleep(delay)
                continue
            self._up = 1
            if result.outcome is Outcome.TOO_LARGE and len(lines) > 1:
                self.counters["split_writes"] += 1
                half = len(lines) // 2
                await self._write_lines(lines[:half], budget)
                await self._write_lines(lines[half:], budget)
                return
            await self._rejected(lines, result, budget)
            return

    async def _rejected(self, lines: list[str], result: WriteResult, budget: list[int]) -> None:
        self.counters["poison_writes"] += 1
        if result.partial:
            assert result.dropped is not None
            dropped = min(result.dropped, len(lines))
            self.counters["dropped"] += dropped
            self.counters["written"] += len(lines) - dropped
            log.error("InfluxDB refused %d of %d lines (poison, dropped): %s", dropped, len(lines), result.detail)
            return
        if len(lines) > 1 and budget[0] >= 2:
            budget[0] -= 2
            self.counters["split_writes"] += 1
            half = len(lines) // 2
            await self._write_lines(lines[:half], budget)
            await self._write_lines(lines[half:], budget)
            return
        self.counters["dropped"] += len(lines)
        log.error("InfluxDB refused %d lines (poison, dropped; status %s): %s; first: %.200s", len(lines), result.status, result.detail, lines[0])

    async def _finish(self, chunk: list[_Entry]) -> None:
        """Commit the chunk's durable watermarks (``Batch.mark``) to SQLite, then complete its futures, free space."""
        marks: dict[tuple[str, int], int] = {}
        for entry in chunk:
            if entry.batch is not None:
                key = (entry.batch.agent, entry.batch.epoch)
                marks[key] = max(marks.get(key, 0), entry.batch.mark)
        error: BaseException | None = None
        if marks:
            try:
                await self.state.save_marks(marks)
            except StoreError as exc:
                error = exc
                self.counters["state_errors"] += 1
        for entry in chunk:
            self._buffer.popleft()
            self._buffered_lines -= len(entry.lines)
            self._buffered_bytes -= entry.nbytes
            if not entry.fut.done():
                if error is None:
                    entry.fut.set_result(None)
                else:
                    entry.fut.set_exception(StoreError(f"sequence marks not saved: {error}"))
        self.counters["batches"] += sum(1 for e in chunk if e.batch is not None)
        async with self._space:
            self._space.notify_all()

    def _backoff(self, attempt: int) -> float:
        cap = min(self.cfg.backoff_max_ms, self.cfg.backoff_initial_ms * 2 ** min(attempt, 30)) / 1000
        return random.uniform(cap / 2, cap)

    # --- late data -----------------------------------------------------------------

    def _late_minutes(self, chunk: list[_Entry]) -> tuple[int, int] | None:
        """Minutes holding points the continuous queries will not reach (older than their resample window)."""
        if not self.cfg.manage_retention:
            return None
        now = self.clock()
        horizon = (now // MINUTE_MS + 1) * MINUTE_MS - self.cfg.resample_for_ms + MINUTE_MS
        lo: int | None = None
        hi: int | None = None
        for entry in chunk:
            if entry.t_min is not None and entry.t_max is not None and entry.t_min < horizon:
                lo = entry.t_min if lo is None else min(lo, entry.t_min)
                hi = entry.t_max if hi is None else max(hi, entry.t_max)
        if lo is None or hi is None:
            return None
        raw_floor = now - duration_ms(self.cfg.raw_retention) if self.cfg.raw_retention != "INF" else lo
        lo = max(lo, raw_floor)
        return (lo // MINUTE_MS) * MINUTE_MS, min(hi // MINUTE_MS + 1, horizon // MINUTE_MS) * MINUTE_MS

    async def _backfill(self) -> None:
        """Recompute the 1-minute aggregates of late minutes from raw data (SELECT ... INTO)."""
        assert self._late is not None
        lo, hi = self._late
        self._last_backfill = time.monotonic()
        if hi <= lo:
            self._late = None
            return
        http = self._require_http()
        try:
            stmts = [schema.backfill_query(sel, lo, hi) for sel in schema.downsample_selects(self.cfg.db, self.cfg.raw_rp, self.cfg.agg_rp).values()]
            await http.query(";".join(stmts), write=True)
        except Exception as exc:  # noqa: BLE001 - keep the range and try again after the next write
            self.counters["backfill_errors"] += 1
            log.warning("aggregating late minutes %d..%d failed: %s", lo, hi, exc)
            return
        self._late = None
        self.counters["backfills"] += 1
        self.counters["backfill_minutes"] += (hi - lo) // MINUTE_MS

    # --- reading -------------------------------------------------------------------

    async def trends(self, bed: str, params: list[str], since: int, until: int, limit: int) -> dict[str, list[TrendPoint]]:
        """One query per parameter (InfluxDB reads a series by its tags: nothing is parsed twice)."""
        return {param: await self.trend(bed, param, since, until, limit) for param in params}

    async def trend(self, bed: str, param: str, since: int, until: int, limit: int) -> list[TrendPoint]:
        """One round trip. Raw points when ``until - since <= raw_max_ms``, else 1-minute means (``t`` = minute start)."""
        cfg = self.cfg
        rp = cfg.raw_rp if cfg.manage_retention else ""
        if until - since <= cfg.raw_max_ms:
            q = schema.raw_trend_query(rp, bed, param, since, until, limit)
        elif not cfg.manage_retention:
            q = schema.live_agg_trend_query(rp, bed, param, since, until, limit)
        else:
            settled = (self.clock() // MINUTE_MS) * MINUTE_MS - cfg.resample_for_ms  # older minutes: CQ or backfill wrote them
            parts = []
            if since < settled:
                parts.append(schema.agg_trend_query(cfg.agg_rp, bed, param, since, min(until + 1, settled), limit))
            if until >= settled:
                parts.append(schema.live_agg_trend_query(rp, bed, param, max(since, settled), until, limit))
            q = ";".join(parts)
        self.counters["trend_queries"] += 1
        try:
            results = await self._require_http().query(q)
        except Exception:
            self.counters["query_errors"] += 1
            raise
        points: list[TrendPoint] = []
        for result in results:
            for series in result.get("series", []):
                for row in series["values"]:
                    t, value, flags = row[0], row[1], row[2]
                    points.append(TrendPoint(int(t), None if value is None else float(value), int(flags or 0)))
        points.sort(key=lambda p: p.t)
        return points[:limit]

    async def unmapped_codes(self, device: str | None, limit: int) -> list[dict]:
        """From InfluxDB (so within the raw retention period): each code's last sample and its count."""
        rp = self.cfg.raw_rp if self.cfg.manage_retention else ""
        last, counts = await self._require_http().query(schema.unmapped_queries(rp, device))

        def key(series: dict) -> tuple[str, str, str]:
            return tuple(unquote_tag_value(series["tags"].get(k) or "") for k in ("device", "system", "code"))  # type: ignore[return-value]

        n = {key(s): s["values"][0][1] for s in counts.get("series", [])}
        out = []
        for series in last.get("series", []):
            device_, system, code = key(series)
            row = dict(zip(series["columns"], series["values"][0], strict=True))
            out.append({"device": device_, "system": system, "code": code, "count": int(n.get((device_, system, code), 0)),
                        "last": {"t": int(row["time"]), "name": row["name"], "value": row["value"], "unit": row["unit"],
                                 "status": row["status"], "bed": unquote_tag_value(row["bed"] or "")}})  # fmt: skip
        out.sort(key=lambda r: (r["device"], r["system"], r["code"]))
        return out[:limit]

    def stats(self) -> dict[str, int]:
        out = {
            "written": 0,
            "retried": 0,
            "dropped": 0,
            "batches": 0,
            "writes": 0,
            "poison_writes": 0,
            "backpressure_waits": 0,
            "numerics_written": 0,
            "wave_chunks_written": 0,
            "unmapped_written": 0,
        }
        out.update(self.counters)
        out["buffered"] = self._buffered_lines
        out["buffered_batches"] = len(self._buffer)
        out["buffer_limit"] = self.cfg.max_buffer_lines
        out["influx_up"] = self._up
        return out


def _line_time(line: str) -> int | None:
    """The ms timestamp ending a line, or None when it has none we can read (InfluxDB will judge the line)."""
    tail = line[line.rfind(" ") + 1 :]
    return int(tail) if tail.lstrip("-").isdigit() else None
