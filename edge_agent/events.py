"""Events a device driver's sans-I/O parser produces from the bytes it is fed.

A parser returns a list of these from ``feed(data)``. Observations are already
normalised to the vocabulary (``wire.Observation``); a value whose code the
vocabulary does not map is kept as sent (``wire.UnmappedObservation``); the
uplink turns waveform segments into sequenced ``wire.WaveChunk`` frames. A
driver that reads a patient id at a bed reports it as ``wire.PatientSeen``
(not yet forwarded to the hub: the agent's ``route`` ignores it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wire.messages import Observation, PatientSeen, UnmappedObservation


@dataclass(frozen=True, slots=True)
class WaveSegment:
    """Evenly spaced samples of one lead: ``value = sample * scale``."""

    bed: str
    lead: str  # key from wire.vocabulary.LEADS
    t_first: int  # device time of the first sample, ms
    rate_hz: int
    scale: float
    samples: tuple[int, ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """A device-level condition: ``probe_off``, ``leads_off``, ``ok``, ``disconnected``..."""

    bed: str
    device: str
    status: str
    t_dev: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ParseError:
    """Bytes the parser discarded, and why. Counted and logged; never fatal."""

    code: str  # e.g. "checksum", "framing", "oversized", "unknown_param"
    detail: str
    discarded: int = 0  # bytes thrown away


DriverEvent = Observation | UnmappedObservation | WaveSegment | DeviceStatus | ParseError | PatientSeen
