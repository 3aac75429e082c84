"""Wire messages exchanged between edge agents, the hub and consoles.

These are plain typed records. ``wire.codec`` turns them into bytes and back;
nothing here does I/O. Times are integer milliseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Observation:
    """One value of one parameter for one bed, as a device reported it.

    ``value`` is ``None`` when the device reported the parameter without a usable
    number (probe off, leads off, invalid); ``flags`` then says why.
    """

    bed: str
    param: str  # key from wire.vocabulary.PARAMETERS
    value: float | None
    t_dev: int  # device time, ms
    t_rx: int  # edge agent receive time, ms
    device: str = ""
    flags: int = 0  # wire.vocabulary.Flag bits


@dataclass(frozen=True, slots=True)
class UnmappedObservation:
    """A value whose code the vocabulary does not map, kept as the device sent it.

    It is stored and listed per device (``GET /api/unmapped``) so a hospital's
    engineer sees which codes a monitor sends that teleicu does not map; it never
    enters scores or alarms. Text fields are as sent, clipped to the codec's
    ``UNMAPPED_LIMITS`` (``wire.codec.clip``).
    """

    bed: str
    device: str
    system: str  # coding system: an HL7 OBX-3.3 such as "MDC" or "LN"; "mqtt_json" for a JSON key
    code: str  # the code as sent: HL7 OBX-3.1, a JSON key
    name: str  # its text or reference id as sent (HL7 OBX-3.2), "" if none
    value: str  # the value as sent
    unit: str  # the unit as sent, "" if none
    status: str  # the result status as sent (HL7 OBX-11), "" if none
    t_dev: int  # device time, ms
    t_rx: int  # edge agent receive time, ms


@dataclass(frozen=True, slots=True)
class PatientSeen:
    """A device named the patient at a bed: the patient id it sent (HL7 PCD-01 PID-3.1), as sent.

    ``t`` is the device's time for the message that named it (ms). The hub
    compares it with the patient admitted to the bed; it is not an admission.
    """

    bed: str
    patient_id: str
    device: str
    t: int


@dataclass(frozen=True, slots=True)
class Hello:
    """First message on an edge connection: who the agent is and which beds it serves.

    ``epoch`` identifies one run of the agent (ms at its start); sequence numbers
    are unique within (agent, epoch). See README "Edge protocol".
    """

    agent: str
    epoch: int
    ward: str
    beds: tuple[str, ...] = ()
    proto: int = 1
    floor: int = 0  # every frame up to here was acknowledged or dropped by the agent: none will be (re)sent
    pace: bool = False  # the agent understands ``Pace``; sent only when true, a key older hubs ignore


@dataclass(frozen=True, slots=True)
class ObsFrame:
    seq: int
    obs: tuple[Observation, ...]
    unmapped: tuple[UnmappedObservation, ...] = ()
    patients: tuple[PatientSeen, ...] = ()  # patient ids devices named (PCD-01 PID-3), checked against admissions


@dataclass(frozen=True, slots=True)
class WaveChunk:
    """A run of evenly spaced samples of one waveform lead: ``value = sample * scale``."""

    seq: int
    bed: str
    lead: str  # key from wire.vocabulary.LEADS
    t_first: int  # device time of the first sample, ms
    rate_hz: int
    scale: float
    samples: tuple[int, ...] = field(repr=False)  # int16 counts


@dataclass(frozen=True, slots=True)
class Ack:
    """Hub to agent: every frame with sequence <= ``seq`` is durably handled, and so are
    the frames listed in ``also`` (sent ahead of a backlog, so above ``seq``)."""

    seq: int
    also: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Status:
    """Agent to hub, unsequenced and informational: device conditions and the agent's own health.

    ``devices``: one dict per device whose condition changed or is not ok
    (``bed``, ``device``, ``status``, ``detail``, ``t``); ``spool``: frames and
    bytes waiting, frames dropped since start.
    """

    devices: tuple[dict, ...] = ()
    spool: dict | None = None


@dataclass(frozen=True, slots=True)
class Welcome:
    """Hub to agent, in reply to Hello: the highest sequence already handled in this epoch."""

    last_seq: int


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """Hub to agent: a frame, or part of one, was rejected. The connection stays open."""

    code: str
    detail: str
    seq: int | None = None
    rejected: tuple[dict, ...] = ()


@dataclass(frozen=True, slots=True)
class Pace:
    """Hub to agent (only to one whose hello said ``pace``): send numbered frames at most ``frames_per_s`` a second,
    newest numerics frame first, until told otherwise; ``None`` lifts the pace. A new connection starts unpaced.

    The hub sends it while it brakes its intake (``ingest.overload``), so that the agent holds its frames in its
    spool instead of in the TCP buffers, where they would delay everything behind them, keepalive pings included.
    """

    frames_per_s: float | None


EdgeMessage = Hello | ObsFrame | WaveChunk | Status
HubMessage = Ack | Welcome | ErrorReport | Pace
