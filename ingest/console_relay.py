"""Consoles across JetStream workers: each ward's console messages go out on NATS, and every worker relays them.

A clinician's console may be connected to any hub worker; her wards may be
owned by others. This relay (one per worker, on the worker's NATS connection;
subjects and shapes in ``ingest.console_relay_contract``) does four things:

* **publishes** what the hub's tick and alarm engine send to consoles, but only
  for wards this worker speaks for (``speaks_for``: it owns the lease, or the
  ward's agent is connected here over the WebSocket) and its own technical
  alarms: those go to its own consoles at once and on ``live.<ward>`` /
  ``hub.<worker>`` through a bounded queue drained by ``run``. Messages about
  a ward it does not speak for (the rows it keeps of a ward another worker
  serves) go nowhere;
* **relays** another worker's messages to its consoles, subscribed to the wards
  its consoles watch (``watch``/``unwatch``, counted per ward; every ward's
  subject while a console of all wards is open), never its own messages back
  and never another worker's about a ward it owns itself;
* **answers** snapshot requests for the wards it owns, takes the delivery
  confirmations other workers' consoles send for them, and acknowledges or
  silences their alarms for clinicians on other workers (``serve``/``unserve``;
  the asking worker checked who she is and her ward, and audits what she did);
  reads a ward's bed settings again when another worker says a clinician
  there changed one (``bed_settings_changed``), and its census, doing its part
  of the move, when another worker admitted, moved or discharged a patient
  of the ward (``patient_moved``), and puts a value a nurse charted through
  another worker in its live state (``charted``); and sends the live waveforms
  of a bed a page on another worker watches (``ingest.wave_relay``, which also
  brings those of other workers' beds to pages here);
* **assembles a console's snapshot**: its own wards from the hub, the others
  asked of their owners in parallel; a ward nobody answers for within
  ``SNAPSHOT_TIMEOUT_S`` is left out and listed as unserved (its beds come back
  with the next owner's first update).

When a ward moves, its new owner republishes the ward's beds and open alarms
(``Hub.take_ward``), so a console that connected while nobody owned the ward
gets them without reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from alerts.lifecycle import AlertError
from ingest.console_feed import encode
from ingest.console_relay_contract import (
    ALERT,
    EVENT,
    WORKER,
    ActionResult,
    AlarmAction,
    ChartedValue,
    RelayContractError,
    WardSnapshot,
    encode_delivered,
    encode_moved,
    live_headers,
    name_of,
    parse_action,
    parse_charted,
    parse_delivered,
    parse_moved,
    parse_result,
    parse_snapshot,
    subject,
    wildcard,
)
from ingest.hub import Hub
from ingest.patients.service import PatientRefused
from ingest.stores.base import StoreError
from ingest.wave_relay import WaveRelay
from wire.jetstream_contract import JetStreamContractError

log = logging.getLogger(__name__)

OUT_QUEUE = 20_000  # console messages waiting for the NATS connection; past it they are counted and dropped
SNAPSHOT_TIMEOUT_S = 1.0  # a ward's owner answers a snapshot request within this, or the ward is listed as unserved
ACT_TIMEOUT_S = 3.0  # a ward's owner answers an acknowledgement or silence within this, or the clinician is told to retry
MAX_ALERT_WARDS = 100_000  # alarm id -> ward, for routing delivery confirmations; the oldest go first
ALL = "*"  # the watch key of a console that sees every ward


class ConsoleRelay:
    def __init__(self, hub: Hub, prefix: str, worker: str, owns: Callable[[str], bool], counters: Counter[str]) -> None:
        self.hub = hub
        self.prefix = prefix
        self.worker = worker
        self.owns = owns
        self.counters = counters
        self._nc: NatsClient | None = None
        self._out: asyncio.Queue[tuple[str, bytes, dict[str, str]]] = asyncio.Queue(maxsize=OUT_QUEUE)
        self._watching: Counter[str] = Counter()  # ward (or ALL) -> consoles here watching it
        self._subs: dict[str, Subscription] = {}  # ward (or ALL) -> its live subscription
        self._served: dict[str, list[Subscription]] = {}  # owned ward -> its snapshot and delivered subscriptions
        self._alert_ward: dict[str, str] = {}  # another worker's open alarm -> its ward
        self._attached = asyncio.Event()  # run() has the connection
        self.waves = WaveRelay(hub, prefix, worker, self.speaks_for, self._enqueue, counters)  # bed pages' live waveforms
        hub.feed.outlet = self.publish
        hub.relay = self

    # --- publishing what this worker owns ---------------------------------------------------------

    def speaks_for(self, ward: str) -> bool:
        """This worker is the ward's voice: it holds the ward's lease, or one of the ward's agents is connected to it
        over the WebSocket (mixed uplinks: such a ward has no lease, and this hub is where its data is)."""
        if self.owns(ward):
            return True
        agents = self.hub.agents
        return any(agents.wards.get(a) == ward for a in agents.online)

    def publish(self, msg: dict[str, Any], ward: str | None) -> None:
        """The hub's console message: to this worker's consoles and to NATS if this worker may speak for ``ward``."""
        if ward is not None and not self.speaks_for(ward):
            return
        text = encode(msg)
        self.hub.feed.deliver(text, ward)
        try:
            subj = subject(self.prefix, "hub", self.worker) if ward is None else subject(self.prefix, "live", ward)
        except ValueError:  # a WebSocket ward whose name cannot be a subject token: its consoles are on this hub only
            self.counters["console_relay_local_only"] += 1
            return
        self._enqueue(subj, text.encode(), live_headers(self.worker, msg))

    def _enqueue(self, subj: str, data: bytes, headers: dict[str, str]) -> None:
        """Onto the bounded queue to NATS; a message past its bound is counted and dropped (consoles catch up at their
        next snapshot, a waveform shows a gap)."""
        try:
            self._out.put_nowait((subj, data, headers))
        except asyncio.QueueFull:
            self.counters["console_relay_dropped"] += 1

    async def run(self, nc: NatsClient) -> None:
        """On the worker's connection: subscribe to what consoles here watch, and publish until cancelled."""
        self._nc = nc
        hub_sub = await nc.subscribe(wildcard(self.prefix, "hub"), cb=self._heard_hub)
        self._attached.set()
        try:
            for key in list(self._watching):
                await self._subscribe(key)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.waves.run(nc), name="console-relay-waves")
                while True:
                    subj, data, headers = await self._out.get()
                    try:
                        await nc.publish(subj, data, headers=headers)
                        self.counters["console_messages_published"] += 1
                    except nats.errors.Error as exc:  # the reconnect buffer is full: a console catches up at its next snapshot
                        self.counters["console_relay_dropped"] += 1
                        log.warning("console relay: %s not published (%s)", subj, exc or type(exc).__name__)
        finally:
            self._nc = None
            self._attached.clear()
            for sub in [hub_sub, *self._subs.values(), *(s for subs in self._served.values() for s in subs)]:
                with contextlib.suppress(nats.errors.Error):
                    await sub.unsubscribe()
            self._subs.clear()
            self._served.clear()

    # --- relaying other workers' wards to consoles here -------------------------------------------

    async def watch(self, wards: frozenset[str] | None) -> None:
        """A console here watches ``wards`` (None: every ward)."""
        keys = [ALL] if wards is None else sorted(wards)
        self._watching.update(keys)  # counted first: an unwatch after a failed subscribe takes back exactly these
        for key in keys:
            await self._subscribe(key)

    async def unwatch(self, wards: frozenset[str] | None) -> None:
        for key in [ALL] if wards is None else sorted(wards):
            self._watching[key] -= 1
            if self._watching[key] <= 0:
                del self._watching[key]
                sub = self._subs.pop(key, None)
                if sub is not None:
                    with contextlib.suppress(nats.errors.Error):
                        await sub.unsubscribe()

    async def _subscribe(self, key: str) -> None:
        if self._nc is None or key in self._subs:
            return
        try:
            subj = wildcard(self.prefix, "live") if key == ALL else subject(self.prefix, "live", key)
        except JetStreamContractError:  # a ward no worker can speak for on NATS: nothing to relay
            return

        async def heard(msg: Msg) -> None:
            await self._heard(msg, key)

        sub = await self._nc.subscribe(subj, cb=heard)
        if self._watching[key] <= 0 or key in self._subs:  # the last console went (or another subscribed) meanwhile
            await sub.unsubscribe()
            return
        self._subs[key] = sub
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await self._nc.flush(timeout=SNAPSHOT_TIMEOUT_S)  # the server has the subscription: nothing published after is missed

    async def _heard(self, msg: Msg, key: str) -> None:
        headers = msg.headers or {}
        if headers.get(WORKER) == self.worker or (key != ALL and ALL in self._subs):
            return  # its own message (already delivered here), or a copy the every-ward subscription delivers
        try:
            ward = name_of(self.prefix, "live", msg.subject)
            text = msg.data.decode()
        except (RelayContractError, ValueError):
            self.counters["console_relay_refused"] += 1
            return
        if self.speaks_for(ward):  # a former owner still speaking for it: this worker is the ward's voice now
            self.counters["console_relay_stale_owner"] += 1
            return
        alert = headers.get(ALERT)
        if alert is not None:
            self._note_alert(alert, ward, headers.get(EVENT) == "resolved")
        self.counters["console_messages_relayed"] += 1
        self.hub.feed.deliver(text, ward)

    async def _heard_hub(self, msg: Msg) -> None:
        if (msg.headers or {}).get(WORKER) == self.worker:
            return
        self.counters["console_messages_relayed"] += 1
        self.hub.feed.deliver(msg.data.decode(errors="replace"), None)

    def _note_alert(self, alert: str, ward: str, resolved: bool) -> None:
        if resolved:
            self._alert_ward.pop(alert, None)
            return
        self._alert_ward[alert] = ward
        if len(self._alert_ward) > MAX_ALERT_WARDS:
            del self._alert_ward[next(iter(self._alert_ward))]

    # --- a console's snapshot and its confirmations -----------------------------------------------

    async def snapshot(self, wards: frozenset[str] | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
        """Beds and open alarms of ``wards`` (None: every ward) wherever they are served, and the wards nobody
        answered for."""
        if wards is None:
            try:
                target = set(await self.hub.auth.registered_wards())
            except StoreError:
                target = set()
            target |= {b.ward for b in self.hub.state.beds}
        else:
            target = set(wards)
        mine = frozenset(w for w in target if self.speaks_for(w))
        beds = self.hub.beds_json(mine)
        alerts = [a.to_json() for a in self.hub.book.list_open() if a.ward in mine or not a.ward]
        others = sorted(target - mine)
        answers = await asyncio.gather(*(self._ask(w) for w in others))
        unserved = []
        for ward, answer in zip(others, answers, strict=True):
            if answer is None:
                unserved.append(ward)
                continue
            beds.extend(answer.beds)
            alerts.extend(answer.alerts)
            for a in answer.alerts:
                self._note_alert(str(a.get("id")), ward, False)
        return beds, alerts, unserved

    async def bed_of_owner(self, bed: str, ward: str) -> dict[str, Any] | None:
        """One bed's row as the owner of its ward has it now (None: nobody answered, or it has no such bed)."""
        answer = await self._ask(ward)
        return next((b for b in answer.beds if b.get("bed") == bed), None) if answer is not None else None

    async def ward_of_bed(self, bed: str) -> str | None:
        """The ward of a bed this worker has no row of: from the agents registered in the shared state store."""
        with contextlib.suppress(StoreError):
            return next((ward for _agent, ward, beds in await self.hub.state_store.known_agents() if bed in beds), None)
        return None

    async def _ask(self, ward: str) -> WardSnapshot | None:
        if self._nc is None:
            return None
        try:
            reply = await self._nc.request(subject(self.prefix, "snapshot", ward), b"", timeout=SNAPSHOT_TIMEOUT_S)
            return parse_snapshot(reply.data, ward)
        except JetStreamContractError:  # a name no worker can own on NATS (a WebSocket ward of another hub)
            return None
        except (nats.errors.Error, TimeoutError) as exc:  # no owner now (a failover), or one that did not answer in time
            self.counters["console_snapshots_unanswered"] += 1
            log.info("console relay: no snapshot of ward %s (%s)", ward, exc or type(exc).__name__)
        except RelayContractError as exc:
            self.counters["console_relay_refused"] += 1
            log.error("console relay: %s", exc)
        return None

    async def delivered(self, ids: list[str]) -> None:
        """A console here confirmed it shows these alarms: this hub's own, and each other ward's to its owner."""
        self.hub.delivered(ids)
        by_ward: dict[str, list[str]] = {}
        for i in ids:
            ward = self._alert_ward.get(i)
            if ward is not None and not self.speaks_for(ward):
                by_ward.setdefault(ward, []).append(i)
        if self._nc is None:
            return
        for ward, mine in by_ward.items():
            with contextlib.suppress(nats.errors.Error):
                await self._nc.publish(subject(self.prefix, "delivered", ward), encode_delivered(mine))

    # --- answering for the wards this worker owns ---------------------------------------------------

    async def serve(self, ward: str) -> None:
        """This worker owns ``ward`` now: answer its snapshot requests and take its delivery confirmations."""
        await self._attached.wait()
        if self._nc is None or ward in self._served:
            return
        snap = await self._nc.subscribe(subject(self.prefix, "snapshot", ward), cb=self._answer)
        confirmed = await self._nc.subscribe(subject(self.prefix, "delivered", ward), cb=self._confirmed)
        act = await self._nc.subscribe(subject(self.prefix, "act", ward), cb=self._act)
        settings = await self._nc.subscribe(subject(self.prefix, "settings", ward), cb=self._settings_changed)
        moved = await self._nc.subscribe(subject(self.prefix, "moved", ward), cb=self._moved)
        charted = await self._nc.subscribe(subject(self.prefix, "charted", ward), cb=self._charted)
        wants = await self.waves.serve(self._nc, ward)
        self._served[ward] = [snap, confirmed, act, settings, moved, charted, wants]

    async def unserve(self, ward: str) -> None:
        for sub in self._served.pop(ward, []):
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()

    async def _answer(self, msg: Msg) -> None:
        try:
            ward = name_of(self.prefix, "snapshot", msg.subject)
        except (RelayContractError, ValueError):
            return
        if not self.owns(ward):  # the lease just went: the asker hears from the next owner
            return
        alerts = [a.to_json() for a in self.hub.book.list_open() if a.ward == ward]
        with contextlib.suppress(nats.errors.Error):
            await msg.respond(WardSnapshot(self.hub.beds_json(frozenset({ward})), alerts).encode())
        self.counters["console_snapshots_answered"] += 1

    async def _confirmed(self, msg: Msg) -> None:
        try:
            self.hub.delivered(parse_delivered(msg.data))
        except RelayContractError as exc:
            self.counters["console_relay_refused"] += 1
            log.warning("console relay: %s", exc)

    async def _act(self, msg: Msg) -> None:
        try:
            ward = name_of(self.prefix, "act", msg.subject)
            action = parse_action(msg.data)
        except (RelayContractError, ValueError) as exc:
            self.counters["console_relay_refused"] += 1
            result = ActionResult(status=400, detail=str(exc))
        else:
            if not self.owns(ward):  # the lease just went: the asker tells the clinician to try again
                return
            result = self._do(ward, action)
        with contextlib.suppress(nats.errors.Error):
            await msg.respond(result.encode())

    async def _settings_changed(self, msg: Msg) -> None:
        try:
            ward = name_of(self.prefix, "settings", msg.subject)
        except (RelayContractError, ValueError):
            self.counters["console_relay_refused"] += 1
            return
        if not self.owns(ward):  # the next owner reads them as it takes the ward
            return
        try:
            await self.hub.restore_bed_settings(ward)
            self.counters["bed_settings_reread"] += 1
        except StoreError as exc:  # the store stays the record: this worker reads it again as it next takes the ward
            log.error("console relay: could not read ward %s's bed settings again (%s)", ward, exc)

    async def _moved(self, msg: Msg) -> None:
        try:
            ward = name_of(self.prefix, "moved", msg.subject)
            from_bed, to_bed, to_ward = parse_moved(msg.data)
        except (RelayContractError, ValueError) as exc:
            self.counters["console_relay_refused"] += 1
            log.warning("console relay: %s", exc)
            return
        if not self.owns(ward):  # the next owner reads the census as it takes the ward
            return
        try:
            await self.hub.patients.load(ward)
        except StoreError as exc:
            log.error("console relay: could not read the census again after a patient's move in ward %s (%s)", ward, exc)
            return
        self.counters["patient_moves_heard"] += 1
        await self.hub.apply_patient_move(from_bed, to_bed, to_ward)

    async def _charted(self, msg: Msg) -> None:
        try:
            ward = name_of(self.prefix, "charted", msg.subject)
            v = parse_charted(msg.data)
        except (RelayContractError, ValueError) as exc:
            self.counters["console_relay_refused"] += 1
            log.warning("console relay: %s", exc)
            return
        if not self.owns(ward) or self.hub.ward_of(v.bed) != ward:  # the lease just went, or a bed of another ward
            return
        try:
            self.hub.take_charted(v.bed, v.param, v.value, v.t, v.by)
            self.counters["charted_values_heard"] += 1
        except PatientRefused as exc:  # the other worker screened it as this one does: a contract broken, not a value
            self.counters["console_relay_refused"] += 1
            log.error("console relay: a value charted for bed %s refused here: %s", v.bed, exc.message)

    def _do(self, ward: str, action: AlarmAction) -> ActionResult:
        a = self.hub.book.by_id.get(action.alert_id)
        if a is None or a.ward != ward:
            return ActionResult(status=409, detail=f"alarm {action.alert_id} is not open in ward {ward}")
        try:
            if action.op == "ack":
                alert = self.hub.acknowledge(action.alert_id, action.by)
            else:
                alert = self.hub.silence(action.alert_id, action.by, action.reason, action.seconds)
        except AlertError as exc:
            return ActionResult(status=409, detail=str(exc))
        self.counters["console_actions_done"] += 1
        return ActionResult(alert)

    # --- a bed's settings changed on this worker, for a ward another worker owns ---------------------

    async def bed_settings_changed(self, ward: str) -> None:
        """A clinician here changed a setting of one of ``ward``'s beds (already in the shared state store): if
        another worker owns the ward, it reads the ward's settings again. Best effort: a ward changing owner meanwhile
        is read by its next owner as it takes the ward."""
        if self._nc is None or self.speaks_for(ward):
            return
        with contextlib.suppress(nats.errors.Error, JetStreamContractError):
            await self._nc.publish(subject(self.prefix, "settings", ward), b"", headers={WORKER: self.worker})

    async def patient_moved(self, from_bed: str | None, to_bed: str | None, from_ward: str | None, to_ward: str | None) -> None:
        """A clinician or the HIS here admitted, moved or discharged a patient (already in the shared state store):
        the owners of her wards other than this worker read the census again and do their part of the move. Best
        effort, as ``bed_settings_changed``: a ward changing owner meanwhile is read by its next owner."""
        if self._nc is None:
            return
        for ward in sorted({w for w in (from_ward, to_ward) if w and not self.speaks_for(w)}):
            with contextlib.suppress(nats.errors.Error, JetStreamContractError):
                await self._nc.publish(subject(self.prefix, "moved", ward), encode_moved(from_bed, to_bed, to_ward),
                                       headers={WORKER: self.worker})  # fmt: skip

    async def charted(self, ward: str, value: ChartedValue) -> None:
        """A nurse here charted a value (already stored) for a bed of ``ward``: its owner, if another worker, puts it
        in its live state. Best effort: a value missed in a failover is in the store and the records, not in the next
        owner's live NEWS2 until charted again (its total stays incomplete, never wrong)."""
        if self._nc is None or self.speaks_for(ward):
            return
        with contextlib.suppress(nats.errors.Error, JetStreamContractError):
            await self._nc.publish(subject(self.prefix, "charted", ward), value.encode(), headers={WORKER: self.worker})

    # --- acting on another worker's alarm ------------------------------------------------------------

    async def ward_of_alert(self, alert_id: str) -> str | None:
        """The ward of an open alarm another worker owns (None: not one, or this worker's own)."""
        if self.hub.book.by_id.get(alert_id) is not None:
            return None
        ward = self._alert_ward.get(alert_id)
        if ward is None:  # raised before this worker's consoles watched its ward: the shared state store knows it
            with contextlib.suppress(StoreError):
                ward = next((a.get("ward") for a in await self.hub.state_store.open_alerts() if a.get("id") == alert_id), None)
        return ward if ward and not self.speaks_for(ward) else None

    async def act(self, ward: str, action: AlarmAction) -> ActionResult:
        """Ask the ward's owner to acknowledge or silence; 503 when no owner answers (a failover in progress)."""
        if self._nc is None:
            return ActionResult(status=503, detail="this hub is not connected to NATS: try again in a few seconds")
        try:
            reply = await self._nc.request(subject(self.prefix, "act", ward), action.encode(), timeout=ACT_TIMEOUT_S)
            return parse_result(reply.data)
        except JetStreamContractError:
            return ActionResult(status=409, detail=f"alarm {action.alert_id} is of ward {ward!r}, which no hub worker owns")
        except (nats.errors.Error, TimeoutError):
            return ActionResult(status=503, detail=f"ward {ward} is changing hub worker: try again in a few seconds")
        except RelayContractError as exc:
            log.error("console relay: %s", exc)
            return ActionResult(status=503, detail="the ward's hub worker answered with something unreadable")
