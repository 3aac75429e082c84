"""Simulated monitor gateways sending HL7 v2.6 ORU^R01 (IHE PCD-01) over MLLP, as TCP clients.

A gateway (``Hl7Gateway``) holds one TCP connection to the edge agent and
reports for several beds: every second, one ORU^R01 message per bed with the
numerics of ``simulators.physiology`` (HR, SpO2, pulse rate, RR, NIBP,
temperature, etCO2). It sends one message at a time and waits for its ACK
(HL7 original mode): AA, AE and AR are counted; without an ACK within
``ack_timeout_s`` the same bytes (same control id) are sent again, and after
``max_resends`` the connection is dropped and re-opened. Connection attempts
back off exponentially (with jitter) up to ``backoff_max_s``. Messages wait in
a bounded queue (``MAX_QUEUED`` per gateway, oldest dropped and counted) while
the edge is unreachable.

The bytes are what a PCD-01 device observation reporter sends: MLLP
(``0x0B`` message ``0x1C 0x0D``), ``\\r`` between segments, MSH with
``ORU^R01^ORU_R01``, version 2.6 and the IHE PCD-01 profile, PID-3 patient id,
PV1-3 location ``ICU-<ward>^^BED<nn>``, an OBR, an MDS context row (empty
OBX-2/5, status X), then one NM row per metric with MDC code, containment path
and MDC unit. The codes are written out here from ``shared/clinical/codes.md``,
independently of ``wire.vocabulary``, so a wrong mapping on either side shows.

Variants, by a bed's position in its group (0, 1, 2, 3, 0, ...): 0 plain
(NIBP 150021-3, pulse rate 149530), 1 cuff NIBP codes (150301-3), 2 the Philips
pulse-rate code (149538), 3 both. NIBP is taken once per cuff cycle; every
message repeats the last reading with OBX-14 = the time it was measured (other
rows use the message time, MSH-7/OBR-7). Times are wall-clock UTC with
``+0000``.

Scenarios (``simulators.scenarios``): while the SpO2 probe is off, the SpO2 and
pulse-rate rows are sent with an empty OBX-5 and OBX-11 = ``X`` (no value);
the ``hl7_pcd01`` driver turns them into observations with no value and the
``invalid`` flag (PCD-01 carries no reason). A ``silent`` bed stops being
reported; the connection stays up for the other beds. ``o2`` and ``acvpu`` have
no MDC code and are not sent (a monitor does not measure them).

``create(beds, ward=..., **options)`` is the ``simulators.base`` contract;
``edge_devices()`` gives one ``hl7_pcd01`` device per gateway, listening on a
free 127.0.0.1 port picked in ``start()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from simulators.base import SimBed
from simulators.physiology import Physiology
from simulators.scenarios import Scenario, get_scenario
from wire.clock import wall_ms

log = logging.getLogger(__name__)

MAX_QUEUED = 600  # messages per gateway waiting to be sent
MAX_ACK_BUFFER = 65536  # bytes of unread ACK data kept
PROFILE = "IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO"
NIBP_KEYS = ("nibp_sys", "nibp_dia", "nibp_mean")

# (MDC code, reference id, MDC unit code, unit reference id, containment path)
_BPM = ("264864", "MDC_DIM_BEAT_PER_MIN")
_RPM = ("264928", "MDC_DIM_RESP_PER_MIN")
_PCT = ("262688", "MDC_DIM_PERCENT")
_MMHG = ("266016", "MDC_DIM_MMHG")
_DEGC = ("268192", "MDC_DIM_DEGC")
ROWS: dict[str, tuple[str, str, tuple[str, str], str]] = {
    "hr": ("147842", "MDC_ECG_HEART_RATE", _BPM, "1.1.1.1"),
    "spo2": ("150456", "MDC_PULS_OXIM_SAT_O2", _PCT, "1.2.1.1"),
    "pr": ("149530", "MDC_PULS_OXIM_PULS_RATE", _BPM, "1.2.1.2"),
    "rr": ("151562", "MDC_RESP_RATE", _RPM, "1.3.1.1"),
    "nibp_sys": ("150021", "MDC_PRESS_BLD_NONINV_SYS", _MMHG, "1.4.1.1"),
    "nibp_dia": ("150022", "MDC_PRESS_BLD_NONINV_DIA", _MMHG, "1.4.1.2"),
    "nibp_mean": ("150023", "MDC_PRESS_BLD_NONINV_MEAN", _MMHG, "1.4.1.3"),
    "temp": ("150344", "MDC_TEMP", _DEGC, "1.5.1.1"),
    "etco2": ("151708", "MDC_AWAY_CO2_ET", _MMHG, "1.6.1.1"),
}
CUFF_CODES = {
    "nibp_sys": ("150301", "MDC_PRESS_CUFF_SYS"),
    "nibp_dia": ("150302", "MDC_PRESS_CUFF_DIA"),
    "nibp_mean": ("150303", "MDC_PRESS_CUFF_MEAN"),
}
PHILIPS_PR_CODE = ("149538", "MDC_PULS_OXIM_PULS_RATE")
ORDER = ("hr", "spo2", "pr", "rr", "nibp_sys", "nibp_dia", "nibp_mean", "temp", "etco2")


def hl7_time(t_ms: int) -> str:
    """``YYYYMMDDHHMMSS.mmm+0000`` in UTC."""
    return datetime.fromtimestamp(t_ms // 1000, tz=UTC).strftime("%Y%m%d%H%M%S") + f".{t_ms % 1000:03d}+0000"


def mllp(message: bytes) -> bytes:
    return b"\x0b" + message + b"\x1c\x0d"


@dataclass(frozen=True, slots=True)
class Row:
    """One metric for one OBX segment; ``value`` None means no value (OBX-11 X)."""

    key: str
    value: float | None
    t_ms: int | None = None  # OBX-14, when it differs from the message time


def _number(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def encode_oru(
    *,
    control_id: str,
    t_ms: int,
    gateway: str,
    eui64: str,
    patient_id: str,
    location: str,
    rows: Sequence[Row],
    cuff: bool = False,
    philips_pr: bool = False,
) -> bytes:
    """One PCD-01 ORU^R01 message (no MLLP framing), segments ended by ``\\r``."""
    ts = hl7_time(t_ms)
    filler = f"{control_id}^{gateway}^{eui64}^EUI-64"
    segments = [
        f"MSH|^~\\&|{gateway}^{eui64}^EUI-64|TELEICU-SIM|||{ts}||ORU^R01^ORU_R01|{control_id}|P|2.6|||NE|AL||UNICODE UTF-8|||{PROFILE}",
        f"PID|||{patient_id}^^^HOSP^MR||PATIENT^{patient_id}",
        f"PV1||I|{location}",
        f"OBR|1|{filler}|{filler}|182777000^monitoring of patient^SCT|||{ts}",
        f"OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X|||||||{eui64}^EUI-64",
    ]
    for n, row in enumerate(rows, start=2):
        code, ref, (unit, unit_ref), path = ROWS[row.key]
        if cuff and row.key in CUFF_CODES:
            code, ref = CUFF_CODES[row.key]
        if philips_pr and row.key == "pr":
            code, ref = PHILIPS_PR_CODE
        value, status = ("", "X") if row.value is None else (_number(row.value), "R")
        obx = f"OBX|{n}|NM|{code}^{ref}^MDC|{path}|{value}|{unit}^{unit_ref}^MDC|||||{status}"
        if row.t_ms is not None:
            obx += f"|||{hl7_time(row.t_ms)}"
        segments.append(obx)
    return ("\r".join(segments) + "\r").encode("utf-8")


@dataclass(frozen=True, slots=True)
class Hl7Bed:
    """One simulated bed behind a gateway."""

    bed: str  # our bed id
    location: str  # PV1-3 as the gateway sends it, e.g. "ICU-A^^BED01"
    scenario: Scenario
    seed: int | Sequence[int]
    nibp_interval_s: float = 60.0
    cuff: bool = False  # NIBP under the cuff-pressure codes 150301-3
    philips_pr: bool = False  # pulse rate under the Philips code 149538


class BedFeed:
    """Physiology of one bed turned into the rows of its message for each second."""

    def __init__(self, spec: Hl7Bed) -> None:
        self.spec = spec
        self.physiology = Physiology(spec.seed, spec.scenario.vitals, nibp_interval_s=spec.nibp_interval_s)
        self.last_nibp: dict[str, float] = {}
        self.last_nibp_ms = 0

    def rows(self, second: int, now_ms: int) -> list[Row] | None:
        """The rows for second ``second`` (None when the monitor is silent)."""
        if self.spec.scenario.silent(float(second)):
            return None
        values: dict[str, float] = {}
        while self.physiology.t_s <= second:  # catch up if seconds were skipped
            values = self.physiology.step()
        nibp = {k: values[k] for k in NIBP_KEYS if k in values}
        if nibp:
            self.last_nibp, self.last_nibp_ms = nibp, now_ms
        probe_off = self.spec.scenario.spo2_probe_off(float(second))
        current: dict[str, float | None] = {
            "hr": values["hr"],
            "spo2": None if probe_off else values["spo2"],
            "pr": None if probe_off else values["hr"],
            "rr": values["rr"],
            "temp": values["temp"],
            "etco2": values["etco2"],
        }
        out = [Row(k, current[k]) for k in ORDER if k in current and k not in NIBP_KEYS]
        for k in NIBP_KEYS:
            if k in self.last_nibp:
                out.append(Row(k, self.last_nibp[k], None if nibp else self.last_nibp_ms))
        out.sort(key=lambda r: ORDER.index(r.key))
        return out


class _AckReader:
    """Reads MLLP-framed ACKs from the edge: ``(MSA-1, MSA-2)`` pairs. Bounded buffer."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[str, str]]:
        self.buf += data
        acks: list[tuple[str, str]] = []
        while True:
            start = self.buf.find(b"\x0b")
            if start < 0:
                self.buf.clear()
                return acks
            end = self.buf.find(b"\x1c\x0d", start)
            if end < 0:
                del self.buf[:start]
                if len(self.buf) > MAX_ACK_BUFFER:
                    self.buf.clear()
                return acks
            body = bytes(self.buf[start + 1 : end]).decode("utf-8", "replace")
            del self.buf[: end + 2]
            for seg in body.split("\r"):
                if seg.startswith("MSA|"):
                    fields = seg.split("|")
                    acks.append((fields[1] if len(fields) > 1 else "", fields[2] if len(fields) > 2 else ""))


class _NoAck(Exception):
    pass


class Hl7Gateway:
    """One simulated gateway: one MLLP connection carrying the messages of several beds."""

    def __init__(
        self,
        gateway_id: str,
        beds: Sequence[Hl7Bed],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        eui64: str = "00155DFFFE000001",
        ack_timeout_s: float = 5.0,
        max_resends: int = 3,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self.gateway_id = gateway_id
        self.beds = list(beds)
        self.host, self.port = host, port
        self.eui64 = eui64
        self.ack_timeout_s = ack_timeout_s
        self.max_resends = max_resends
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._rng = rng or random.Random()
        self._queue: deque[tuple[str, bytes]] = deque()
        self._queued = asyncio.Event()
        self._pending: tuple[str, bytes] | None = None
        self._next_id = 1
        #: messages_queued, messages_sent, resends, aa, ae, ar, ack_timeouts, stale_acks,
        #: connects, connect_failures, disconnects, dropped_queue_full
        self.counters: Counter[str] = Counter()

    def pick_port(self) -> int:
        """Choose a free loopback port for the edge to listen on (if none was given)."""
        if not self.port:
            with socket.socket() as s:
                s.bind((self.host, 0))
                self.port = s.getsockname()[1]
        return self.port

    def edge_device(self, device_id: str) -> dict[str, Any]:
        return {
            "id": device_id,
            "driver": "hl7_pcd01",
            "listen": f"{self.host}:{self.port}",
            "beds": {b.location: b.bed for b in self.beds},
        }

    # -- producing ------------------------------------------------------------------

    def _enqueue(self, control_id: str, frame: bytes) -> None:
        if len(self._queue) >= MAX_QUEUED:
            self._queue.popleft()
            self.counters["dropped_queue_full"] += 1
        self._queue.append((control_id, frame))
        self.counters["messages_queued"] += 1
        self._queued.set()

    def _control_id(self) -> str:
        cid = f"{self.gateway_id}-{self._next_id}"
        self._next_id += 1
        return cid

    async def _produce(self, feeds: list[BedFeed], duration_s: float | None) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        second = 0
        while duration_s is None or second <= duration_s:
            delay = t0 + second - loop.time()
            await asyncio.sleep(max(0.0, delay))
            if delay < -5:  # far behind: skip ahead (physiology catches up inside rows())
                second = int(loop.time() - t0)
            now_ms = wall_ms()
            for feed in feeds:
                rows = feed.rows(second, now_ms)
                if rows is None:
                    continue
                spec = feed.spec
                cid = self._control_id()
                message = encode_oru(
                    control_id=cid,
                    t_ms=now_ms,
                    gateway=self.gateway_id,
                    eui64=self.eui64,
                    patient_id=f"MRN-{spec.bed}",
                    location=spec.location,
                    rows=rows,
                    cuff=spec.cuff,
                    philips_pr=spec.philips_pr,
                )
                self._enqueue(cid, mllp(message))
            second += 1

    # -- sending -----------------------------------------------------------------------

    async def _next_message(self) -> tuple[str, bytes]:
        while not self._queue:
            self._queued.clear()
            await self._queued.wait()
        return self._queue.popleft()

    async def _await_ack(self, reader: asyncio.StreamReader, acks: _AckReader, control_id: str) -> str:
        while True:
            data = await reader.read(4096)
            if not data:
                raise ConnectionError("edge closed the connection")
            for code, cid in acks.feed(data):
                if cid == control_id:
                    return code
                self.counters["stale_acks"] += 1

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        acks = _AckReader()
        while True:
            if self._pending is None:
                self._pending = await self._next_message()
            control_id, frame = self._pending
            for attempt in range(self.max_resends + 1):
                writer.write(frame)
                async with asyncio.timeout(self.ack_timeout_s):  # TimeoutError (an OSError): reconnect
                    await writer.drain()
                self.counters["messages_sent"] += 1
                if attempt:
                    self.counters["resends"] += 1
                try:
                    async with asyncio.timeout(self.ack_timeout_s):
                        code = await self._await_ack(reader, acks, control_id)
                    break
                except TimeoutError:
                    self.counters["ack_timeouts"] += 1
            else:
                raise _NoAck(f"no ACK for {control_id} after {self.max_resends + 1} sends")
            self.counters[code.lower() if code in ("AA", "AE", "AR") else "ack_other"] += 1
            self._pending = None

    async def _send(self) -> None:
        delay = self.backoff_initial_s
        while True:
            try:
                async with asyncio.timeout(5.0):
                    reader, writer = await asyncio.open_connection(self.host, self.port)
            except (OSError, TimeoutError) as exc:
                self.counters["connect_failures"] += 1
                log.debug("gateway %s: connect to %s:%d failed: %s", self.gateway_id, self.host, self.port, exc)
                await asyncio.sleep(delay * (0.5 + self._rng.random()))
                delay = min(delay * 2, self.backoff_max_s)
                continue
            self.counters["connects"] += 1
            delay = self.backoff_initial_s
            try:
                await self._session(reader, writer)
            except (OSError, _NoAck) as exc:  # ConnectionError is an OSError
                self.counters["disconnects"] += 1
                log.info("gateway %s: connection lost (%s); reconnecting", self.gateway_id, exc)
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(1.0):
                        await writer.wait_closed()
            await asyncio.sleep(delay * (0.5 + self._rng.random()))

    async def run(self, duration_s: float | None = None) -> None:
        """Produce and send until cancelled, or for ``duration_s`` (then send what is queued, briefly)."""
        feeds = [BedFeed(b) for b in self.beds]
        async with asyncio.TaskGroup() as tg:
            sender = tg.create_task(self._send())
            await self._produce(feeds, duration_s)
            with contextlib.suppress(TimeoutError):  # give the last messages a moment to be ACKed
                async with asyncio.timeout(2.0):
                    while self._queue or self._pending is not None:
                        await asyncio.sleep(0.05)
            sender.cancel()


class Hl7Devices:
    """The HL7 group of a simulated ward (``simulators.base.SimulatedDevices``)."""

    def __init__(self, ward: str, gateways: Sequence[Hl7Gateway]) -> None:
        self.ward = ward
        self.gateways = list(gateways)

    async def start(self) -> None:
        for gw in self.gateways:
            gw.pick_port()

    def edge_devices(self) -> list[dict[str, Any]]:
        return [gw.edge_device(gw.gateway_id) for gw in self.gateways]

    async def run(self, duration_s: float | None = None) -> None:
        async with asyncio.TaskGroup() as tg:
            for gw in self.gateways:
                tg.create_task(gw.run(duration_s))

    async def close(self) -> None:
        """Nothing to release: connections close when ``run`` ends."""

    def stats(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for gw in self.gateways:
            total.update(gw.counters)
        return dict(total)


def create(
    beds: list[SimBed],
    *,
    ward: str,
    gateways: int = 1,
    host: str = "127.0.0.1",
    ack_timeout_s: float = 5.0,
    max_resends: int = 3,
) -> Hl7Devices:
    """HL7 gateways for ``beds``: ``gateways`` of them (default one), beds split in contiguous runs.

    Bed ``i`` (0-based, in the order given) is at location ``ICU-<ward>^^BED<i+1>``
    with variant ``i % 4`` (see the module docstring).
    """
    if not isinstance(gateways, int) or gateways < 1:
        raise ValueError(f"gateways must be an integer >= 1, got {gateways!r}")
    if not isinstance(ack_timeout_s, (int, float)) or not ack_timeout_s > 0:
        raise ValueError(f"ack_timeout_s must be a positive number, got {ack_timeout_s!r}")
    if not isinstance(max_resends, int) or max_resends < 0:
        raise ValueError(f"max_resends must be an integer >= 0, got {max_resends!r}")
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be an address to listen on, got {host!r}")
    specs = [
        Hl7Bed(
            bed=b.bed,
            location=f"ICU-{ward}^^BED{i + 1:02d}",
            scenario=get_scenario(b.scenario),
            seed=b.seed,
            nibp_interval_s=b.nibp_interval_s,
            cuff=i % 2 == 1,
            philips_pr=(i // 2) % 2 == 1,
        )
        for i, b in enumerate(beds)
    ]
    n = max(1, min(gateways, len(specs)))
    per = -(-len(specs) // n) if specs else 0
    groups = [specs[k * per : (k + 1) * per] for k in range(n)]
    return Hl7Devices(
        ward,
        [
            Hl7Gateway(
                f"hl7gw-{ward}-{k + 1}",
                group,
                host=host,
                eui64=f"00155DFFFE{k + 1:06X}",
                ack_timeout_s=ack_timeout_s,
                max_resends=max_resends,
            )
            for k, group in enumerate(groups)
            if group
        ],
    )
