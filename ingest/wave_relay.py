"""Live waveforms across JetStream workers: a bed's page on any worker gets the bed's chunks from its ward's owner.

Waveforms are the heaviest live data (hundreds of samples a second per lead),
so, unlike the console messages, none go on NATS unless a page elsewhere
watches the bed (subjects in ``ingest.console_relay_contract``):

* a worker with a bed page open on a bed of a ward it does not speak for
  subscribes to ``wave.<ward>`` and says ``wavewant.<ward>`` (the bed's name)
  at once and every ``WANT_EVERY_S`` while the page is open (``watch``);
* the ward's owner, hearing a want, sends that bed's chunks (the bytes
  ``/ws/waves`` sends, ``Teleicu-Bed`` naming the bed) for ``WANT_TTL_S``, so a
  page closed or a worker gone costs at most that long;
* the watching worker checks each chunk (``check_chunk``) and hands it to its
  own watchers of the bed (``WaveFeed.deliver``).

A chunk lost on the way is a gap in the trace, as for a page that falls
behind: the page shows the gap, nothing is drawn that did not arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from ingest.console_relay_contract import BED, WORKER, RelayContractError, check_chunk, name_of, parse_want, subject
from ingest.hub import Hub
from wire.jetstream_contract import JetStreamContractError

WANT_EVERY_S = 2.0
WANT_TTL_S = 6.0  # three wants missed: the owner stops sending

Send = Callable[[str, bytes, dict[str, str]], None]  # onto the console relay's bounded queue to NATS


class WaveRelay:
    def __init__(self, hub: Hub, prefix: str, worker: str, speaks_for: Callable[[str], bool], send: Send,
                 counters: Counter[str]) -> None:  # fmt: skip
        self.hub = hub
        self.prefix = prefix
        self.worker = worker
        self.speaks_for = speaks_for
        self._send = send
        self.counters = counters
        self._nc: NatsClient | None = None
        self._remote: Counter[tuple[str, str]] = Counter()  # (bed, ward) -> pages here on a bed another worker serves
        self._subs: dict[str, Subscription] = {}  # ward -> its wave subscription
        self._wanted: dict[str, float] = {}  # bed -> until when (loop time) another worker wants its chunks
        hub.waves.outlet = self._out

    # --- a page here on a bed another worker serves ---------------------------------------------------

    async def run(self, nc: NatsClient) -> None:
        """Say again every ``WANT_EVERY_S`` which beds pages here watch (subscribed to their wards), until cancelled."""
        self._nc = nc
        try:
            while True:
                for ward in {w for _b, w in self._remote}:  # a subscription NATS refused earlier is tried again
                    with contextlib.suppress(nats.errors.Error):
                        await self._subscribe(ward)
                for bed, ward in list(self._remote):
                    await self._want(bed, ward)
                await asyncio.sleep(WANT_EVERY_S)
        finally:
            self._nc = None
            for sub in self._subs.values():
                with contextlib.suppress(nats.errors.Error):
                    await sub.unsubscribe()
            self._subs.clear()

    async def watch(self, bed: str, ward: str) -> None:
        """A page here watches ``bed`` of ``ward``, which another worker serves."""
        self._remote[(bed, ward)] += 1
        with contextlib.suppress(nats.errors.Error):  # NATS away: the page shows no trace, and run() subscribes again
            await self._subscribe(ward)
        if self._remote[(bed, ward)] == 1:
            await self._want(bed, ward)

    async def unwatch(self, bed: str, ward: str) -> None:
        self._remote[(bed, ward)] -= 1
        if self._remote[(bed, ward)] > 0:
            return
        del self._remote[(bed, ward)]
        if not any(w == ward for _b, w in self._remote):
            sub = self._subs.pop(ward, None)
            if sub is not None:
                with contextlib.suppress(nats.errors.Error):
                    await sub.unsubscribe()

    async def _want(self, bed: str, ward: str) -> None:
        if self._nc is None:
            return
        with contextlib.suppress(nats.errors.Error, JetStreamContractError):
            await self._nc.publish(subject(self.prefix, "wavewant", ward), bed.encode(), headers={WORKER: self.worker})

    async def _subscribe(self, ward: str) -> None:
        if self._nc is None or ward in self._subs:
            return
        try:
            subj = subject(self.prefix, "wave", ward)
        except JetStreamContractError:  # a ward no worker can serve on NATS: nothing to relay
            return
        sub = await self._nc.subscribe(subj, cb=self._heard)
        if ward in self._subs or not any(w == ward for _b, w in self._remote):  # subscribed, or the page went, meanwhile
            await sub.unsubscribe()
            return
        self._subs[ward] = sub

    async def _heard(self, msg: Msg) -> None:
        headers = msg.headers or {}
        if headers.get(WORKER) == self.worker:
            return
        try:
            ward = name_of(self.prefix, "wave", msg.subject)
            bed = check_chunk(msg.data, headers.get(BED))
        except (RelayContractError, ValueError):
            self.counters["wave_relay_refused"] += 1
            return
        if (bed, ward) not in self._remote or self.speaks_for(ward):  # nobody here watches it, or this worker serves it now
            return
        self.counters["wave_chunks_relayed"] += 1
        self.hub.waves.deliver(bed, msg.data)

    # --- the owner: sending the chunks other workers' pages want ------------------------------------

    async def serve(self, nc: NatsClient, ward: str) -> Subscription:
        """This worker owns ``ward``: hear the wants for its beds (the caller unsubscribes when it no longer owns it)."""
        return await nc.subscribe(subject(self.prefix, "wavewant", ward), cb=self._heard_want)

    async def _heard_want(self, msg: Msg) -> None:
        try:
            ward = name_of(self.prefix, "wavewant", msg.subject)
            bed = parse_want(msg.data)
        except (RelayContractError, ValueError):
            self.counters["wave_relay_refused"] += 1
            return
        if not self.speaks_for(ward) or self.hub.ward_of(bed) != ward:
            return
        self._wanted[bed] = asyncio.get_running_loop().time() + WANT_TTL_S
        self.hub.waves.relayed.add(bed)

    def _out(self, bed: str, data: bytes) -> None:
        """``WaveFeed``'s outlet: a chunk of a bed some worker wanted; sent while the want is fresh."""
        until = self._wanted.get(bed)
        ward = self.hub.ward_of(bed)
        if until is None or asyncio.get_running_loop().time() > until or not ward or not self.speaks_for(ward):
            self._wanted.pop(bed, None)
            self.hub.waves.relayed.discard(bed)
            return
        self._send(subject(self.prefix, "wave", ward), data, {WORKER: self.worker, BED: bed})
