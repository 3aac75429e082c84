"""Technical alarms: the data or the equipment has a problem, not the patient.

- ``no_data``: a bed whose edge agent is connected has sent nothing for ``no_data_s``;
- ``probe_off`` / ``leads_off``: the device flags SpO2 / ECG heart rate as probe (leads) off, or
  as invalid, for ``probe_off_delay_s``;
- ``device_disconnected``: the edge agent reports a bed's device gone (unplugged,
  its connection or presence lost);
- ``agent_offline``: an edge agent that was connected has been gone ``agent_offline_s``
  (its beds then get this one alarm, not one "no data" each);
- ``spool_dropping``: an edge agent's store-and-forward spool is full and dropping
  frames (data lost at the gateway: it says how many);
- ``store_unreachable``: the store is failing writes (edge frames stay unacknowledged);
- ``hub_overloaded``: the hub is past its capacity and reads the gateways more slowly (``ingest.overload``):
  live values may arrive late;
- ``undelivered``: an alarm event no console confirmed receiving in ``undelivered_s``;
- ``patient_mismatch``: a monitor names a patient (HL7 PCD-01 PID-3) other than the one admitted to its bed:
  its data may be someone else's (wrong-patient data is a known hazard).

They are kept apart from physiological alarms (``category = "technical"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from alerts.kinds import technical_kind
from alerts.lifecycle import Condition
from alerts.policy import WardPolicy
from wire.vocabulary import COLUMN, Flag



@dataclass
class TechnicalView:
    """What the hub knows that technical rules look at."""

    now: int
    beds: Sequence[str]
    wards: Sequence[str]
    agents: Sequence[str]  # each bed's agent
    last_rx: np.ndarray  # per bed: hub receive time of its latest data, ms (0 never)
    watched_since: np.ndarray  # per bed: when its agent last connected, ms
    flags: np.ndarray  # [bed x parameter] device flags of the latest values
    agents_offline: dict[str, tuple[str, int]]  # agent -> (ward, offline since ms)
    store_error: str | None
    overloaded: str | None = None  # why the hub is past its capacity (None when it keeps up)
    undelivered: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # bed -> (ward, alert id, title)
    devices_down: dict[str, tuple[str, tuple[str, ...], str]] = field(default_factory=dict)  # bed -> (ward, devices, detail)
    spool_dropping: dict[str, tuple[str, int]] = field(default_factory=dict)  # agent -> (ward, frames dropped)
    hold: frozenset[str] = frozenset()  # beds and "agent:<id>" subjects whose open alarms hold (agents not yet back after a restart)
    patient_mismatch: dict[str, tuple[str, str]] = field(default_factory=dict)  # bed -> (ward, what the monitor and the census say)


AGENT_SUBJECT = "agent:"  # alarms about an edge agent have the subject "agent:<id>"


def agent_subject(agent: str) -> str:
    return AGENT_SUBJECT + agent


class TechnicalTracker:
    def __init__(self) -> None:
        self.probe_since = np.zeros(0, dtype=np.int64)
        self.leads_since = np.zeros(0, dtype=np.int64)

    def _grow(self, n: int) -> None:
        for name in ("probe_since", "leads_since"):
            old = getattr(self, name)
            if len(old) < n:
                new = np.zeros(n, dtype=np.int64)
                new[: len(old)] = old
                setattr(self, name, new)

    def conditions(
        self, v: TechnicalView, policy: Sequence[WardPolicy], no_data_ms: np.ndarray, delay_ms: np.ndarray
    ) -> dict[tuple[str, str], Condition]:
        """``policy[i]`` is bed i's ward policy, ``no_data_ms``/``delay_ms`` its limits as arrays.
        Vectorised over beds; Python runs only for the beds in trouble."""
        n = len(v.beds)
        self._grow(n)
        now = v.now
        out: dict[tuple[str, str], Condition] = {}

        def add(subject: str, bed: str, ward: str, what: str, title: str, detail: str, pol: WardPolicy) -> None:
            kind = technical_kind(what)
            out[(subject, kind)] = Condition(subject, bed, ward, kind, pol.technical_priority[what], title, detail, "technical")

        if n:
            # A device that only says "invalid" (HL7 OBX-11 X, S/5 special values) is treated like a sensor off:
            # either way the parameter is not being measured and someone must look at the sensor.
            spo2_flags, hr_flags = v.flags[:n, COLUMN["spo2"]], v.flags[:n, COLUMN["hr"]]
            probe = (spo2_flags & (Flag.PROBE_OFF | Flag.INVALID)) != 0
            leads = (hr_flags & (Flag.LEADS_OFF | Flag.INVALID)) != 0
            for since, on in ((self.probe_since, probe), (self.leads_since, leads)):
                since[:n][on & (since[:n] == 0)] = now
                since[:n][~on] = 0
            # a bed is covered when its agent is offline (one agent alarm says it all) or it has no agent (forgotten)
            covered = np.fromiter((not a or a in v.agents_offline for a in v.agents), bool, n)
            quiet_since = np.maximum(v.last_rx[:n], v.watched_since[:n])
            quiet = ~covered & (quiet_since > 0) & (now - quiet_since >= no_data_ms)
            probe_on = ~covered & (self.probe_since[:n] > 0) & (now - self.probe_since[:n] >= delay_ms)
            leads_on = ~covered & (self.leads_since[:n] > 0) & (now - self.leads_since[:n] >= delay_ms)
            for i in np.flatnonzero(quiet | probe_on | leads_on):
                pol, bed, ward = policy[i], v.beds[i], v.wards[i]
                if quiet[i]:
                    add(bed, bed, ward, "no_data", "No data from the monitor",
                        f"nothing received for {(now - int(quiet_since[i])) // 1000} s while the edge agent is connected: "
                        "check the monitor and its cable", pol)  # fmt: skip
                if probe_on[i]:
                    off = spo2_flags[i] & Flag.PROBE_OFF
                    add(bed, bed, ward, "probe_off", "SpO2 probe off" if off else "SpO2 not valid",
                        "the oximeter reports " + ("its sensor disconnected" if off else "no valid SpO2") +
                        "; SpO2 is not being measured: check the probe", pol)  # fmt: skip
                if leads_on[i]:
                    off = hr_flags[i] & Flag.LEADS_OFF
                    add(bed, bed, ward, "leads_off", "ECG leads off" if off else "ECG heart rate not valid",
                        "the monitor reports " + ("ECG leads off" if off else "no valid ECG heart rate") +
                        "; heart rate from ECG is not being measured: check the leads", pol)  # fmt: skip
        by_ward = {w: policy[i] for i, w in enumerate(v.wards)} if (v.agents_offline or v.undelivered or v.devices_down or v.spool_dropping
                                                                      or v.patient_mismatch) else {}  # fmt: skip
        for agent, (ward, since) in v.agents_offline.items():
            pol = by_ward.get(ward, policy[0]) if policy else None
            if pol is not None and now - since >= pol.agent_offline_s * 1000:
                add(agent_subject(agent), "", ward, "agent_offline", f"Edge agent {agent} offline",
                    f"no connection from the gateway of ward {ward} since {(now - since) // 1000} s ago: its beds are not being watched", pol)  # fmt: skip
        for bed, (ward, devices, detail) in v.devices_down.items():
            pol = by_ward.get(ward, policy[0]) if policy else None
            if pol is not None:
                title = f"Device {devices[0]} disconnected" if len(devices) == 1 else f"Devices {', '.join(devices)} disconnected"
                add(bed, bed, ward, "device_disconnected", title,
                    f"the edge agent reports gone ({detail or 'no detail'}): check the cable, network or broker", pol)  # fmt: skip
        for agent, (ward, dropped) in v.spool_dropping.items():
            pol = by_ward.get(ward, policy[0]) if policy else None
            if pol is not None:
                add(agent_subject(agent), "", ward, "spool_dropping", f"Edge agent {agent} is dropping data",
                    f"its store-and-forward spool is full: {dropped} frames dropped so far (waveforms first)", pol)  # fmt: skip
        for bed, (ward, detail) in v.patient_mismatch.items():
            pol = by_ward.get(ward, policy[0]) if policy else None
            if pol is not None:
                add(bed, bed, ward, "patient_mismatch", "Monitor names another patient",
                    f"{detail}: its data may belong to someone else; check the monitor's patient and the admission", pol)  # fmt: skip
        if v.store_error and policy:
            add("hub", "", "", "store_unreachable", "Time-series store unreachable",
                f"{v.store_error}; edge data is held at the gateways until the store recovers", policy[0])  # fmt: skip
        if v.overloaded and policy:
            add("hub", "", "", "hub_overloaded", "Hub overloaded, live data may be late", v.overloaded, policy[0])
        for bed, (ward, alert_id, title) in v.undelivered.items():
            pol = by_ward.get(ward, policy[0]) if policy else None
            if pol is not None:
                add(bed, bed, ward, "undelivered", f"Alarm #{alert_id} not confirmed by any console",
                    f"'{title}' was pushed but no console confirmed receiving it: check the consoles watching ward {ward}", pol)  # fmt: skip
        return out
