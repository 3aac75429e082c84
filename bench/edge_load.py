"""Simulated edge agents for load tests: one cheap process speaks the edge protocol for thousands of beds.

A ``Ward`` is one agent: it connects to ``/ws/edge`` as ``edge_agent.uplink`` does (the same credentials, hello and
welcome, numbering, acknowledgements and status reports, through the same sans-I/O ``wire.edge_session.EdgeSession``)
and never waits for acknowledgements: frames go out live, and the session counts what the hub acknowledged.

Every bed sends 1 Hz numerics of a stable ``simulators.physiology`` patient (precomputed: 40 patients x 180 s,
cycled), NIBP re-sent every second with its cuff time as HL7 and S/5 monitors do; each ward sends one numerics frame
per edge flush (250 ms) with the beds whose second falls in it. Beds with ECG also send lead II as the TSP monitor
makes it: 250 Hz in 50-sample chunks, 5 a second. A numerics frame is the codec's own JSON cut into a template and
filled in (checked against the codec once, ``check_frame``); a chunk is one ``encode_wave_chunk``. Device and
receive times are wall-clock ms when the frame is made, just before it is sent.

Used by ``bench/hub_load.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass

import numpy as np
import websockets
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect

from edge_agent.config import UplinkConfig, UplinkSettings
from edge_agent.uplink import WELCOME_TIMEOUT_S, credentials
from simulators.physiology import ECG_LEAD, ECG_RATE_HZ, ECG_SCALE_MV, Physiology
from simulators.scenarios import get_scenario
from simulators.serial_monitor import SAMPLES_PER_TICK
from wire.clock import wall_ms
from wire.codec import WireError, decode_edge, encode_edge, encode_wave_chunk, is_wave_chunk, observation_to_dict
from wire.edge_session import BacklogFrame, DeleteFrames, EdgeSession, LiveFrame, StatusDue
from wire.hub_session import CLOSE_STORE_RECOVERED
from wire.messages import Observation, ObsFrame, WaveChunk

WARD_SIZE = 25
FLUSH_S = UplinkSettings().flush_ms / 1000  # the edge agent's numerics batching: one frame per ward per flush
TICKS_PER_S = round(1 / FLUSH_S)
CHUNK_MS = SAMPLES_PER_TICK * 1000 // ECG_RATE_HZ  # a TSP monitor's ECG segment (50 samples, 200 ms) is one chunk
PARAMS = ("hr", "spo2", "rr", "temp", "etco2", "o2", "acvpu")  # every second (``Physiology.step``)
NIBP = ("nibp_sys", "nibp_dia", "nibp_mean")  # at each cuff reading (every 60 s), re-sent every second
PATIENTS, BANK_S = 40, 180
MAX_BEHIND_S = 1.0  # a ward's producer later than this skips ticks (counted), as the simulators do
_V, _T, _T2, _SEQ = 123456789.0, 4444444444444, 5555555555555, 987654321987  # marks cut out of the codec's JSON
_HEAD, _REST = encode_edge(ObsFrame(_SEQ, ())).decode().split(str(_SEQ))
_OBS_OPEN, _TAIL = _REST.split("[]")  # a numerics frame: _HEAD seq _OBS_OPEN [observations] _TAIL


@dataclass(frozen=True, slots=True)
class Patient:
    rows: list[tuple[tuple[str, ...], tuple[str, ...] | None]]  # per second: PARAMS, and NIBP when the cuff read
    ecg: np.ndarray  # int16 counts of lead II over the same seconds


def patients() -> list[Patient]:
    out = []
    for seed in range(PATIENTS):
        ph = Physiology(seed, get_scenario("stable").vitals)
        rows, ecg = [], []
        for _ in range(BANK_S):
            v = ph.step()
            rows.append((tuple(str(v[k]) for k in PARAMS), tuple(str(v[k]) for k in NIBP) if NIBP[0] in v else None))
            ecg.append(ph.ecg(ECG_RATE_HZ))
        out.append(Patient(rows, np.concatenate(ecg)))
    return out


def _template(bed: str, params: tuple[str, ...], t_rx: int) -> str:
    """The codec's JSON of ``params`` of ``bed`` as a ``str.format`` template: {0} device time, {1}.. the values."""
    out = []
    for i, p in enumerate(params):
        text = json.dumps(observation_to_dict(Observation(bed, p, _V, _T, t_rx, f"mon-{bed}")), separators=(",", ":"))
        out.append(text.replace("{", "{{").replace("}", "}}").replace(repr(_V), f"{{{i + 1}}}").replace(str(_T), "{0}"))
    return ",".join(out)


class Bed:
    def __init__(self, name: str, patient: Patient, second: int, ecg: bool) -> None:
        self.name, self.patient, self.second, self.ecg = name, patient, second, ecg
        self.numerics_tmpl = _template(name, PARAMS, _T)  # t_rx = t_dev: made and sent now
        self.nibp_tmpl = _template(name, NIBP, _T2)  # t_dev the cuff's, t_rx (_T2) that of each re-send
        self.nibp: list[str] | None = None  # the last cuff reading, cut where t_rx goes
        self.ecg_t0 = 0  # wall ms of the first ECG sample
        self.chunks = 0  # ECG chunks made
        self.ecg_at = second * ECG_RATE_HZ

    def numerics(self, now: int) -> str:
        values, cuff = self.patient.rows[self.second % BANK_S]
        self.second += 1
        if cuff is not None:
            self.nibp = self.nibp_tmpl.format(now, *cuff).split(str(_T2))
        text = self.numerics_tmpl.format(now, *values)
        return text if self.nibp is None else f"{text},{str(now).join(self.nibp)}"

    def chunks_due(self, now: int) -> list[tuple[int, tuple[int, ...]]]:
        """(t_first, samples) of each ECG chunk whose last sample is due by ``now`` (wall ms)."""
        out, ecg = [], self.patient.ecg
        while self.ecg_t0 + (self.chunks + 1) * CHUNK_MS <= now:
            i = (self.ecg_at + self.chunks * SAMPLES_PER_TICK) % len(ecg)
            out.append((self.ecg_t0 + self.chunks * CHUNK_MS, tuple(ecg[i : i + SAMPLES_PER_TICK].tolist())))
            self.chunks += 1
        return out


class Ward:
    """One simulated edge agent: a producer every flush, a sender and a receiver, around one ``EdgeSession``."""

    def __init__(self, name: str, beds: list[Bed], secret: str, phase_s: float) -> None:
        self.name, self.agent, self.secret, self.phase_s = name, f"edge-{name}", secret, phase_s
        self.session = EdgeSession(agent=self.agent, ward=name, beds=[b.name for b in beds], epoch=wall_ms())
        self.by_tick = [beds[q::TICKS_PER_S] for q in range(TICKS_PER_S)]
        self.ecg_beds = [b for b in beds if b.ecg]
        self.wake = asyncio.Event()
        self.connected = asyncio.Event()
        self.producing = True
        self.lag_s: list[float] = []  # how late each tick was made
        self.skipped = 0  # ticks skipped, the producer being more than MAX_BEHIND_S late
        self.failure: str | None = None
        self.unacked: dict[int, bytes] = {}  # the agent's spool, in memory: frames sent or not, until acknowledged
        self.resends = 0  # times the hub held this connection and asked for a reconnect and a re-send (1013)

    def frames(self, tick: int, now: int) -> list[tuple[int, bytes]]:
        """The frames of one flush, numbered from the session's next sequence number."""
        out: list[tuple[int, bytes]] = []
        parts = [b.numerics(now) for b in self.by_tick[tick % TICKS_PER_S]]
        if parts:
            seq = self.session.next_seq
            out.append((seq, f"{_HEAD}{seq}{_OBS_OPEN}[{','.join(parts)}]{_TAIL}".encode()))
        for b in self.ecg_beds:
            for t_first, samples in b.chunks_due(now):
                seq = self.session.next_seq + len(out)
                out.append((seq, encode_wave_chunk(WaveChunk(seq, b.name, ECG_LEAD, t_first, ECG_RATE_HZ, ECG_SCALE_MV, samples))))
        return out

    async def run(self, url: str, gate: asyncio.Semaphore, start: asyncio.Future[float]) -> None:
        """Connect (a few wards at a time), then produce from ``start`` (loop time) plus this ward's phase until
        ``producing`` is cleared, and send until cancelled. A hub that held the connection and closes it with 1013
        is answered as the edge agent does: reconnect and re-send what is unacknowledged (``resends``); any other
        lost connection ends the ward (``failure``)."""
        auth = credentials(UplinkConfig(url=url, secret=SecretStr(self.secret)), self.agent)
        try:
            ws = await self._connect(url, gate, auth)
            self.connected.set()
            t0 = await start
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._producer(t0 + self.phase_s))
                while True:
                    try:
                        async with ws, asyncio.TaskGroup() as conn:
                            conn.create_task(self._sender(ws))
                            conn.create_task(self._receiver(ws))
                    except* websockets.ConnectionClosed as closed:
                        if any(c.rcvd is None or c.rcvd.code != CLOSE_STORE_RECOVERED for c in closed.exceptions):
                            raise
                    self.resends += 1
                    self.session.connection_lost()
                    await asyncio.sleep(self.session.reconnect_delay())
                    ws = await self._connect(url, gate, auth)
        except* (OSError, websockets.WebSocketException, TimeoutError, WireError) as group:
            self.failure = repr(group.exceptions[0])

    async def _connect(self, url: str, gate: asyncio.Semaphore, auth: dict) -> ClientConnection:
        async with gate:
            ws = await connect(url, max_size=4 * 1024 * 1024, open_timeout=60, ping_interval=10, **auth)
            await ws.send(self.session.connect(), text=True)
            self._received(await asyncio.wait_for(ws.recv(), WELCOME_TIMEOUT_S))
        return ws

    def _received(self, raw: str | bytes) -> None:
        """The session counts acknowledgements (frames_acked) and errors (hub_error_*); acknowledged frames leave."""
        for ev in self.session.receive_data(raw):
            if isinstance(ev, DeleteFrames):
                for lo, hi in ev.runs:
                    for seq in range(lo, hi + 1):
                        self.unacked.pop(seq, None)

    async def _producer(self, t0: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(t0 - loop.time())
        now = wall_ms()
        for b in self.ecg_beds:
            b.ecg_t0 = now
        tick = 0
        while self.producing:
            at = t0 + tick * FLUSH_S
            await asyncio.sleep(at - loop.time())
            late = loop.time() - at
            if late > MAX_BEHIND_S:
                skip = int(late / FLUSH_S)
                tick, self.skipped, late = tick + skip, self.skipped + skip, late - skip * FLUSH_S
            self.lag_s.append(late)
            frames = self.frames(tick, wall_ms())
            self.unacked.update(frames)
            self.session.spooled(frames)
            self.wake.set()
            tick += 1

    async def _sender(self, ws: ClientConnection) -> None:
        s = self.session
        while True:
            self.wake.clear()
            while (item := s.next_send(time.monotonic())) is not None:
                if isinstance(item, LiveFrame):
                    await ws.send(item.data, text=not is_wave_chunk(item.data))
                elif isinstance(item, StatusDue):
                    await ws.send(s.status_message((), {"frames": s.spooled_count}), text=True)
                elif isinstance(item, BacklogFrame):  # after a reconnect: what the hub held and did not acknowledge
                    data = self.unacked[item.seq]
                    await ws.send(data, text=not is_wave_chunk(data))
            with contextlib.suppress(TimeoutError):  # not asyncio.wait_for: on 3.11 it can swallow a cancellation
                async with asyncio.timeout(s.timeout(time.monotonic())):
                    await self.wake.wait()

    async def _receiver(self, ws: ClientConnection) -> None:
        async for raw in ws:
            self._received(raw)
        raise ConnectionError("the hub closed the connection")


def layout(n_beds: int) -> list[tuple[str, list[str]]]:
    """Wards of ``WARD_SIZE`` beds: [(ward, [bed, ...])]."""
    wards = []
    for w in range(-(-n_beds // WARD_SIZE)):
        ward = f"W{w + 1:03d}"
        wards.append((ward, [f"{ward}-{b + 1:02d}" for b in range(min(WARD_SIZE, n_beds - w * WARD_SIZE))]))
    return wards


def make_wards(plan: list[tuple[str, list[str]]], secrets: dict[str, str], bank: list[Patient], ecg_share: float) -> list[Ward]:
    """Bed ``g`` is patient ``g % PATIENTS`` from second ``7 g``; ECG on an evenly spread ``ecg_share`` of the beds."""
    wards, g = [], 0
    for w, (ward, names) in enumerate(plan):
        beds = []
        for name in names:
            beds.append(Bed(name, bank[g % PATIENTS], 7 * g % BANK_S, int((g + 1) * ecg_share) > int(g * ecg_share)))
            g += 1
        wards.append(Ward(ward, beds, secrets[f"edge-{ward}"], FLUSH_S * w / len(plan)))
    check_frame(wards[0])
    return wards


def check_frame(ward: Ward) -> None:
    """The template's frame decodes to what the codec would have encoded (checked once, on a copy of a bed)."""
    b = ward.by_tick[0][0]
    bed = Bed(b.name, b.patient, 0, False)  # second 0: a cuff reading too
    values, cuff = bed.patient.rows[0]
    made = decode_edge(f"{_HEAD}7{_OBS_OPEN}[{bed.numerics(1000)}]{_TAIL}")
    obs = [Observation(b.name, p, float(v), 1000, 1000, f"mon-{b.name}") for p, v in zip(PARAMS + NIBP, values + (cuff or ()))]
    if made != decode_edge(encode_edge(ObsFrame(7, tuple(obs)))):
        raise SystemExit(f"the numerics template does not match the codec: {made}")

