"""The hub's registry of edge agents: who is expected, who is connected, their devices' conditions and spool health.

Agents the hub has seen are remembered across restarts (``known``, persisted
through the audit writer as ``AgentRecord``s), so a restarted hub expects them
back and raises ``agent_offline`` for one that never returns, but not before a
restart grace (an agent's longest reconnect backoff) has passed: a hub restart
alone raises nothing. An agent whose offline alarm was already open before the
restart carries on without grace.

Device conditions are kept per (bed, device, subject), as drivers report them;
an agent re-sends its whole picture after every hello, so a hello forgets the
old one. Spool reports carry the agent's floor and its drop counts: a growing
drop count raises ``spool_dropping`` for a while after the last drop.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from alerts.technical import agent_subject
from ingest.audit_writer import AgentRecord
from wire.messages import Hello, Status

RESTART_GRACE_MS = 15_000  # after the hub starts, agents get this long (the edge's longest reconnect backoff) on top
# of agent_offline_s to come back before an agent-offline alarm: a hub restart alone raises none
MAX_DEVICE_CONDITIONS = 20_000  # non-ok device conditions kept across all agents (free-text subjects are bounded)
SPOOL_DROP_HOLD_MS = 60_000  # a spool-dropping alarm holds this long after the last reported drop


class AgentRegistry:
    def __init__(self, counters: Counter[str]) -> None:
        self.counters = counters
        self.known: dict[str, tuple[str, tuple[str, ...]]] = {}  # agent -> (ward, beds), as remembered
        self.wards: dict[str, str] = {}  # every agent seen since start -> its ward
        self.offline_since: dict[str, int] = {}
        self.online: Counter[str] = Counter()  # agent -> open connections
        self.device_status: dict[tuple[str, str, str], dict] = {}  # (bed, device, subject) -> non-ok status
        self.spool: dict[str, tuple[dict, int, int]] = {}  # agent -> (latest spool report, when, when drops last grew)
        self.grace_until = 0  # hub time before which no agent counts as offline (set at start)
        self._returning: set[str] = set()  # remembered agents not yet back since the hub started
        self._no_grace: dict[str, int] = {}  # remembered agents whose offline alarm was open: offline since (ms)

    def restore(self, remembered: Iterable[tuple[str, str, list[str]]], offline_alarms: dict[str, int],
                offline_after_ms: Callable[[str], int], now: int) -> None:  # fmt: skip
        """Expect the remembered agents back. ``offline_alarms``: agent -> when its open offline alarm was raised."""
        self.grace_until = now + RESTART_GRACE_MS
        for agent, ward, beds in remembered:  # expected back: offline until they say hello
            self.known[agent] = (ward, tuple(beds))
            self.wards[agent] = ward
            self.offline_since[agent] = now
            if agent in offline_alarms:  # its alarm was open before the restart: it carries on, no grace
                self._no_grace[agent] = offline_alarms[agent] - offline_after_ms(ward)
            self._returning.add(agent)

    def expect(self, agent: str, ward: str, beds: Iterable[str], now: int) -> bool:
        """Expect a remembered agent from now on (a hub worker took its ward): offline until heard, no restart grace.
        Returns False for an agent already connected here."""
        if agent in self.online:
            return False
        self.known[agent] = (ward, tuple(beds))
        self.wards[agent] = ward
        self.offline_since.setdefault(agent, now)
        return True

    def hello(self, h: Hello) -> AgentRecord | None:
        """An agent connected; returns the record to persist when its ward or beds are new to the hub."""
        beds = set(h.beds)  # its whole device picture follows: forget the old one, or stale conditions never clear
        for key in [k for k in self.device_status if k[0] in beds]:
            del self.device_status[key]
        self._returning.discard(h.agent)
        self._no_grace.pop(h.agent, None)
        self.online[h.agent] += 1
        self.wards[h.agent] = h.ward
        self.offline_since.pop(h.agent, None)
        if self.known.get(h.agent) == (h.ward, tuple(h.beds)):
            return None
        self.known[h.agent] = (h.ward, tuple(h.beds))
        return AgentRecord(h.agent, h.ward, tuple(h.beds))

    def goodbye(self, h: Hello, now: int) -> None:
        self.online[h.agent] -= 1
        if self.online[h.agent] <= 0:
            del self.online[h.agent]
            self.offline_since[h.agent] = now

    def forget(self, agent: str, beds: Iterable[str]) -> AgentRecord:
        """Stop expecting an agent that is not connected (its ``beds`` lose their device conditions).

        Raises ``KeyError`` for an agent the hub does not know and ``ValueError`` for one that is connected."""
        if agent not in self.known and agent not in self.wards:
            raise KeyError(agent)
        if agent in self.online:
            raise ValueError(f"agent {agent!r} is connected")
        for table in (self.known, self.wards, self.offline_since, self.spool, self._no_grace):
            table.pop(agent, None)
        self._returning.discard(agent)
        gone = set(beds)
        for key in [k for k in self.device_status if k[0] in gone]:
            del self.device_status[key]
        return AgentRecord(agent, forget=True)

    def status(self, h: Hello, status: Status, now: int) -> int | None:
        """An agent's report: device conditions, and its spool. Returns the agent's floor, if it reported one."""
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
        self.counters["agent_status_reports"] += 1
        if status.spool is None:
            return None
        prev = self.spool.get(h.agent)
        grew = prev[2] if prev else 0
        if status.spool.get("dropped_frames", 0) > (prev[0].get("dropped_frames", 0) if prev else 0):
            grew = now
        self.spool[h.agent] = (status.spool, now, grew)
        return status.spool.get("floor", 0)

    # --- views -------------------------------------------------------------------------

    def json(self) -> list[dict[str, Any]]:
        """Every agent the hub expects or has seen: ward, beds, connected, offline since (ms, or None)."""
        names = sorted(set(self.known) | set(self.wards))
        return [{"agent": a, "ward": self.wards.get(a, self.known.get(a, ("", ()))[0]),
                 "beds": list(self.known.get(a, ("", ()))[1]), "online": a in self.online,
                 "offline_since": self.offline_since.get(a)} for a in names]  # fmt: skip

    def offline(self) -> dict[str, tuple[str, int]]:
        """Agent -> (ward, since when it counts as offline): never before the restart grace ends."""
        return {a: (self.wards.get(a, ""), self._no_grace.get(a, max(t, self.grace_until))) for a, t in self.offline_since.items()}

    def restart_hold(self, now: int) -> frozenset[str]:
        """Beds and agent subjects whose technical alarms hold: agents not yet back, during the restart grace."""
        if now >= self.grace_until or not self._returning:
            return frozenset()
        return frozenset(x for a in self._returning for x in (agent_subject(a), *self.known.get(a, ("", ()))[1]))

    def devices_down(self) -> dict[str, tuple[str, tuple[str, ...], str]]:
        """Per bed: (ward, the devices reported disconnected, "device: subject, ...; device: ...")."""
        down: dict[str, tuple[str, dict[str, list[str]]]] = {}
        for (bed, device, subject), d in self.device_status.items():
            if d["status"] == "disconnected":
                down.setdefault(bed, (d["ward"], {}))[1].setdefault(device, []).append(subject or "device")
        return {bed: (ward, tuple(sorted(devs)), "; ".join(f"{dev}: {', '.join(sorted(subj))}" for dev, subj in sorted(devs.items())))
                for bed, (ward, devs) in down.items()}  # fmt: skip

    def spool_dropping(self, now: int) -> dict[str, tuple[str, int]]:
        """Agent -> (ward, frames dropped) for agents whose spool dropped frames recently."""
        return {a: (self.wards.get(a, ""), rep.get("dropped_frames", 0))
                for a, (rep, _t, grew) in self.spool.items() if grew and now - grew < SPOOL_DROP_HOLD_MS}  # fmt: skip
