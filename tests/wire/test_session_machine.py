"""EdgeSession and HubSession wired together through a faulty in-memory link, as a hypothesis state machine.

The edge has a model spool (durable across edge restarts, with a size limit
that drops the oldest frames); the hub has a model store (writes complete
later, or fail while the store is down; the marks it persists with each batch
survive hub restarts) and a model core that uses the dedup tracker the way
``ingest.hub.Hub`` does (``hello`` and status reports raise the floor,
``take_frame`` drops durable duplicates and stamps the batch with the
watermark, ``handled`` marks frames stored). Both shells mirror the real ones
(``edge_agent.uplink``, ``ingest.edge_endpoint``) step by step.

The hub may brake its intake at any step, and so pace the agent (``Pace``).

Faults: messages delivered out of order, duplicated or lost in either
direction; connections lost on one side while the other still reads what was
in flight; the edge restarted from its spool; the hub restarted (crashed or
stopped) from its persisted marks; the store failing and recovering.

Checked after every step: the floor never moves backwards and never covers a
frame that is spooled, or that was neither stored nor dropped; the hub's
watermark never moves backwards while the hub runs and covers only stored or
dropped frames; the session's account of the spool is the spool's; a frame
is deleted from the spool only once it is stored, and only once. At the end,
with the store healthy and the link reliable (a connection that lost a
message is closed, as TCP would), everything settles within a bounded number
of rounds: the spool empties, every frame is stored (or was dropped) and
deleted exactly once, and the floor and the hub's watermark reach the last
frame.
"""

from __future__ import annotations

import sys
from collections import Counter, deque
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from wire.codec import WireError, encode_edge
from wire.dedup import SeqTracker
from wire.edge_session import BacklogFrame, DeleteFrames, EdgeSession, LiveFrame
from wire.hub_session import FrameReceived, FrameRefused, HelloReceived, HubSession, StatusReceived
from wire.messages import Hello, ObsFrame, Observation, Status

AGENT, EPOCH, WARD, BED = "edge-M", 42, "M", "M-1"
SPOOL_CAPACITY = 12  # frames; beyond it the oldest are dropped
STATUS_S = 0.5
CLOSE = "close"  # the hub closed the connection (after the messages before it)


def frame_bytes(seq: int) -> bytes:
    return encode_edge(ObsFrame(seq, (Observation(BED, "hr", 60.0 + seq % 50, seq, seq, "mon"),)))


# --- the edge ---------------------------------------------------------------------


class ModelSpool:
    """Durable: survives edge restarts. Checks every deletion against the store."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        self.frames: dict[int, bytes] = {}
        self.next_seq = 1
        self.dropped: set[int] = set()
        self.deleted: Counter[int] = Counter()

    def append(self, frames: list[tuple[int, bytes]]) -> list[int]:
        assert [s for s, _ in frames] == list(range(self.next_seq, self.next_seq + len(frames)))
        self.frames.update(frames)
        self.next_seq += len(frames)
        dropped = sorted(self.frames)[: max(0, len(self.frames) - SPOOL_CAPACITY)]
        for seq in dropped:
            del self.frames[seq]
        self.dropped.update(dropped)
        return dropped

    def delete(self, runs: tuple[tuple[int, int], ...]) -> None:
        for lo, hi in runs:
            for seq in range(lo, hi + 1):
                assert seq in self.frames, f"frame {seq} deleted but not in the spool (deleted before, dropped or never spooled)"
                assert self.store.stored[seq] > 0, f"frame {seq} deleted before the hub stored it"
                del self.frames[seq]
                self.deleted[seq] += 1

    def runs(self) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for seq in sorted(self.frames):
            if out and out[-1][1] == seq - 1:
                out[-1] = (out[-1][0], seq)
            else:
                out.append((seq, seq))
        return out


class Edge:
    """The agent: produces frames, spools them, and runs an EdgeSession, like ``edge_agent.uplink.Uplink``."""

    def __init__(self, spool: ModelSpool) -> None:
        self.spool = spool
        self.session = EdgeSession(agent=AGENT, ward=WARD, beds=[BED], epoch=EPOCH, next_seq=spool.next_seq,
                                   spooled=spool.runs(), backlog_rate=200, status_s=STATUS_S)  # fmt: skip
        self.unspooled = 0  # produced, not yet numbered: lost if the agent dies
        self.link: Link | None = None

    def commit(self) -> None:
        first = self.spool.next_seq
        frames = [(seq, frame_bytes(seq)) for seq in range(first, first + self.unspooled)]
        self.unspooled = 0
        self.session.spooled(frames, self.spool.append(frames))

    def connect(self, link: Link) -> None:
        self.link = link
        link.up.append(self.session.connect())

    def pump(self, now: float, limit: int) -> None:
        assert self.link is not None
        while limit > 0 and (item := self.session.next_send(now)) is not None:
            limit -= 1
            if isinstance(item, LiveFrame):
                self.link.up.append(item.data)
            elif isinstance(item, BacklogFrame):
                data = self.spool.frames.get(item.seq)
                assert data is not None, f"the session sends backlog frame {item.seq}, which the spool does not hold"
                self.link.up.append(data)
            else:
                self.link.up.append(self.session.status_message([], {"frames": len(self.spool.frames)}))

    def receive(self, data: bytes | str) -> None:
        if data == CLOSE:
            self.lose_connection()
            return
        try:
            events = self.session.receive_data(data)
        except WireError:  # out of place (a duplicated welcome, an ack before it): the shell drops the link
            self.lose_connection()
            return
        for ev in events:
            if isinstance(ev, DeleteFrames):
                self.spool.delete(ev.runs)

    def lose_connection(self) -> None:
        self.session.connection_lost()
        if self.link is not None:
            self.link.edge_attached = False
            self.link.down.clear()  # nobody reads them any more
        self.link = None


# --- the hub ----------------------------------------------------------------------


@dataclass
class ModelBatch:
    agent: str
    epoch: int
    seq: int
    mark: int


@dataclass
class ModelStore:
    failing: bool = False
    pending: dict[int, ModelBatch] = field(default_factory=dict)  # write id -> batch
    verdicts: dict[int, bool] = field(default_factory=dict)  # write id -> stored?
    stored: Counter[int] = field(default_factory=Counter)  # seq -> times made durable
    persisted: dict[tuple[str, int], int] = field(default_factory=dict)  # the marks saved with the data
    _ids: int = 0

    @property
    def error(self) -> str | None:
        return "store down" if self.failing else None

    def submit(self, batch: ModelBatch) -> int:
        self._ids += 1
        self.pending[self._ids] = batch
        return self._ids

    def complete(self, wid: int) -> None:
        batch = self.pending.pop(wid)
        self.verdicts[wid] = self.write(batch)

    def write(self, batch: ModelBatch) -> bool:
        if self.failing:
            return False
        if batch.seq:
            self.stored[batch.seq] += 1
        key = (batch.agent, batch.epoch)
        self.persisted[key] = max(self.persisted.get(key, 0), batch.mark)
        return True


class HubCore:
    """The tracker's use by ``ingest.hub.Hub`` (hello, agent_status, take_frame, handled), nothing else."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        self.seqs = SeqTracker(dict(store.persisted))
        self.counters: Counter[str] = Counter()

    def hello(self, h: Hello) -> int:
        self.seqs.raise_floor(h.agent, h.epoch, h.floor)
        return self.seqs.last_durable(h.agent, h.epoch)

    def agent_status(self, h: Hello, status: Status) -> None:
        if status.spool is not None:
            self.seqs.raise_floor(h.agent, h.epoch, status.spool.get("floor", 0))

    def take_frame(self, h: Hello, seq: int) -> ModelBatch | None:
        if not self.seqs.is_new(h.agent, h.epoch, seq):
            return None
        return ModelBatch(h.agent, h.epoch, seq, self.seqs.last_durable(h.agent, h.epoch))

    def handled(self, h: Hello, seq: int) -> None:
        self.seqs.stored(h.agent, h.epoch, seq)

    def stop(self) -> None:
        """A graceful stop saves the latest watermarks (``Hub.stop``), if the store takes them."""
        for (agent, epoch), marks in self.seqs.durable.items():
            self.store.write(ModelBatch(agent, epoch, 0, marks.floor))


class HubConn:
    """One connection at the hub, like ``ingest.edge_endpoint._Connection``: reader, acker and hold retry."""

    def __init__(self, hub: HubCore, link: Link) -> None:
        self.hub = hub
        self.link = link
        self.session: HubSession[ModelBatch] = HubSession(hub.seqs, agent=AGENT, beds=[BED], max_frames_per_s=1e9, max_bytes_per_s=1e12, now=0.0,
                                                          counters=hub.counters)  # fmt: skip
        self.inflight: deque[tuple[int, int | None, ModelBatch | None]] = deque()  # (seq, write id, batch)
        self.drained = False  # the acker reached the hold's retry loop
        self.open = True

    def receive(self, data: bytes) -> None:
        s, hub = self.session, self.hub
        for ev in s.receive_data(data):
            if isinstance(ev, FrameRefused):
                if ev.settle is not None:
                    self.inflight.append((ev.settle, None, None))
            elif isinstance(ev, HelloReceived):
                s.welcome(hub.hello(ev.hello))
            elif isinstance(ev, StatusReceived):
                assert s.hello is not None
                hub.agent_status(s.hello, ev.status)
            elif isinstance(ev, FrameReceived):
                assert s.hello is not None
                seq = ev.frame.seq
                batch = hub.take_frame(s.hello, seq)
                if s.frame_taken(seq, batch, [], storable=batch is not None, store_error=hub.store.error):
                    self.inflight.append((seq, hub.store.submit(batch) if batch is not None else None, batch))
        self.flush()

    def flush(self) -> None:
        for data in self.session.data_to_send():
            if self.link.edge_attached:
                self.link.down.append(data)
        if self.session.close_code is not None and self.open:
            self.close()
            if self.link.edge_attached:
                self.link.down.append(CLOSE)

    def acker_step(self) -> bool:
        """One turn of the acker; returns whether anything happened."""
        s, store = self.session, self.hub.store
        if not self.open:
            return False
        if s.holding and not self.inflight:
            if self.drained:
                return False
            s.hold_drained()
            self.drained = True
            self.flush()
            return True
        if not self.inflight:
            return False
        seq, wid, batch = self.inflight[0]
        if wid is not None and wid not in store.verdicts:
            return False  # still being written
        self.inflight.popleft()
        if wid is not None and not store.verdicts.pop(wid):
            s.store_failed(batch, store.error)
            self.inflight.clear()  # those frames stay unacknowledged
            self.flush()
            return True
        assert s.hello is not None
        self.hub.handled(s.hello, seq)
        s.frame_handled(seq, idle=not self.inflight)
        self.flush()
        return True

    def retry(self) -> bool:
        """The hold's retry timer fired."""
        s = self.session
        if not self.open or not self.drained or s.close_code is not None:
            return False
        batch = s.retry_tick(self.hub.store.error)
        if batch is not None:
            if self.hub.store.write(batch):
                s.store_recovered()
            else:
                s.retry_failed()
        self.flush()
        return True

    def close(self) -> None:
        self.open = False
        self.inflight.clear()  # verdicts still to come are not awaited: those frames stay unacknowledged
        self.link.up.clear()


# --- the link ---------------------------------------------------------------------


@dataclass
class Link:
    """One WebSocket: a queue each way. ``damaged``: it lost a message, so (like TCP) it will not carry on."""

    hub: HubConn | None = None
    up: deque[bytes] = field(default_factory=deque)
    down: deque[bytes | str] = field(default_factory=deque)
    edge_attached: bool = True
    damaged: bool = False


class EdgeHubMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.store = ModelStore()
        self.hub = HubCore(self.store)
        self.spool = ModelSpool(self.store)
        self.edge = Edge(self.spool)
        self.links: list[Link] = []
        self.floor = 0  # the highest floor the edge has had
        self.watermark = 0  # the highest watermark of this hub run

    # --- helpers ----------------------------------------------------------------------

    def _open_links(self) -> list[Link]:
        return [link for link in self.links if link.hub is not None and link.hub.open]

    def _connect(self) -> None:
        link = Link()
        link.hub = HubConn(self.hub, link)
        self.links.append(link)
        self.edge.connect(link)

    def _deliver_up(self, link: Link, index: int) -> None:
        data = link.up[index]
        del link.up[index]
        assert link.hub is not None
        link.hub.receive(data)

    def hub_receives_all(self, link: Link) -> None:
        while link.up and link.hub is not None and link.hub.open:
            self._deliver_up(link, 0)

    def _hub_notices_close(self, link: Link) -> None:
        if link.hub is not None and link.hub.open:
            link.hub.close()

    # --- producing, time ---------------------------------------------------------------

    @rule(n=st.integers(1, 6), spool=st.booleans())
    def produce(self, n: int, spool: bool) -> None:
        self.edge.unspooled += n
        if spool:
            self.edge.commit()

    @rule()
    def commit(self) -> None:
        self.edge.commit()

    @rule(dt=st.sampled_from([0.01, 0.05, 0.1, 0.3, 1.0]))
    def tick(self, dt: float) -> None:
        self.now += dt

    # --- the edge's connection ----------------------------------------------------------

    @precondition(lambda self: self.edge.link is None)
    @rule()
    def connect(self) -> None:
        self._connect()

    @precondition(lambda self: self.edge.link is not None)
    @rule(limit=st.integers(1, 20))
    def edge_sends(self, limit: int) -> None:
        self.edge.pump(self.now, limit)

    @precondition(lambda self: self.edge.link is not None and self.edge.link.down)
    @rule(n=st.integers(1, 8), reorder=st.booleans())
    def edge_receives(self, n: int, reorder: bool) -> None:
        """The edge reads up to ``n`` messages; with ``reorder`` the newest overtakes the others."""
        while n > 0 and self.edge.link is not None and self.edge.link.down:
            n -= 1
            down = self.edge.link.down
            msg = down.pop() if reorder and down[-1] != CLOSE else down.popleft()
            reorder = False
            self.edge.receive(msg)

    @precondition(lambda self: self.edge.link is not None)
    @rule()
    def edge_loses_connection(self) -> None:
        self.edge.lose_connection()  # the hub still reads what was in flight until it notices

    @rule()
    def edge_restarts(self) -> None:
        self.edge.lose_connection()
        self.edge = Edge(self.spool)  # unspooled frames are lost: they had no number yet

    # --- the hub -----------------------------------------------------------------------

    @precondition(lambda self: any(link.up for link in self._open_links()))
    @rule(data=st.data(), n=st.integers(1, 8), reorder=st.booleans())
    def hub_receives(self, data: st.DataObject, n: int, reorder: bool) -> None:
        """The hub reads up to ``n`` messages of one connection; with ``reorder`` the newest overtakes the others."""
        link = data.draw(st.sampled_from([link for link in self._open_links() if link.up]), "link")
        assert link.hub is not None
        while n > 0 and link.up and link.hub.open:
            n -= 1
            index = len(link.up) - 1 if reorder else 0
            reorder = False
            if index and link.hub.session.hello is None:
                link.damaged = True  # a frame overtook the hello: refused, it waits for the next connection
            self._deliver_up(link, index)

    @precondition(lambda self: bool(self._open_links()))
    @rule(data=st.data(), brake=st.sampled_from([0.0, 0.05, 0.3, 1.0]))
    def hub_brakes(self, data: st.DataObject, brake: float) -> None:
        """The hub's intake brake as one connection's reader sees it: the session may pace the agent."""
        link = data.draw(st.sampled_from(self._open_links()), "link")
        assert link.hub is not None
        link.hub.session.brake(brake, self.now)
        link.hub.flush()

    @precondition(lambda self: any(not link.edge_attached for link in self._open_links()))
    @rule(data=st.data())
    def hub_notices_close(self, data: st.DataObject) -> None:
        link = data.draw(st.sampled_from([link for link in self._open_links() if not link.edge_attached]), "link")
        self._hub_notices_close(link)

    @precondition(lambda self: bool(self.store.pending))
    @rule(n=st.integers(1, 8), newest_first=st.booleans())
    def store_completes(self, n: int, newest_first: bool) -> None:
        """Up to ``n`` writes complete (stored, or failed while the store is down), in order or newest first."""
        for wid in sorted(self.store.pending, reverse=newest_first)[:n]:
            self.store.complete(wid)

    @precondition(lambda self: bool(self._open_links()))
    @rule(data=st.data())
    def hub_acker(self, data: st.DataObject) -> None:
        """One connection's acker runs until it waits for the store."""
        link = data.draw(st.sampled_from(self._open_links()), "link")
        assert link.hub is not None
        while link.hub.acker_step():
            pass

    @precondition(lambda self: any(link.hub.drained for link in self._open_links() if link.hub))
    @rule(data=st.data())
    def hub_retry_timer(self, data: st.DataObject) -> None:
        link = data.draw(st.sampled_from([link for link in self._open_links() if link.hub and link.hub.drained]), "link")
        assert link.hub is not None
        link.hub.retry()

    @rule(graceful=st.booleans())
    def hub_restarts(self, graceful: bool) -> None:
        for link in self.links:
            self._hub_notices_close(link)
        self.edge.lose_connection()
        if graceful:  # queued writes are flushed, then the watermarks saved (if the store takes them)
            for wid in sorted(self.store.pending):
                self.store.complete(wid)
            self.hub.stop()
        self.store.pending.clear()  # a crash loses what was not yet durable
        self.store.verdicts.clear()
        self.hub = HubCore(self.store)
        self.watermark = self.hub.seqs.last_durable(AGENT, EPOCH)

    @rule(rounds=st.integers(1, 4))
    def everything_moves(self, rounds: int) -> None:
        """A few rounds of the whole system, as at the end (though the store may still be down)."""
        for _ in range(rounds):
            self._round()

    @rule(failing=st.booleans())
    def store_health(self, failing: bool) -> None:
        self.store.failing = failing

    # --- the link's faults -------------------------------------------------------------

    def _pipes(self) -> list[deque]:
        pipes: list[deque] = [link.up for link in self._open_links() if link.up]
        if self.edge.link is not None and self.edge.link.down:
            pipes.append(self.edge.link.down)
        return pipes

    @precondition(lambda self: bool(self._pipes()))
    @rule(data=st.data())
    def link_duplicates(self, data: st.DataObject) -> None:
        pipe = data.draw(st.sampled_from(self._pipes()), "pipe")
        index = data.draw(st.integers(0, len(pipe) - 1), "index")
        if pipe[index] != CLOSE:
            pipe.insert(data.draw(st.integers(index + 1, len(pipe)), "to"), pipe[index])
            if any(link.up is pipe and link.hub and link.hub.session.hello is None for link in self.links):
                self._link_of(pipe).damaged = True  # a copy may overtake the hello

    @precondition(lambda self: bool(self._pipes()))
    @rule(data=st.data())
    def link_loses(self, data: st.DataObject) -> None:
        pipe = data.draw(st.sampled_from(self._pipes()), "pipe")
        index = data.draw(st.integers(0, len(pipe) - 1), "index")
        if pipe[index] != CLOSE:
            del pipe[index]
            self._link_of(pipe).damaged = True

    def _link_of(self, pipe: deque) -> Link:
        return next(link for link in self.links if link.up is pipe or link.down is pipe)

    # --- checked after every step ------------------------------------------------------

    @invariant()
    def the_session_keeps_the_spools_account(self) -> None:
        assert self.edge.session.next_seq == self.spool.next_seq
        assert self.edge.session.spooled_runs() == self.spool.runs()

    @invariant()
    def the_floor_never_moves_back_nor_covers_an_unstored_frame(self) -> None:
        floor = self.edge.session.floor
        assert floor >= self.floor, f"floor moved back from {self.floor} to {floor}"
        assert not self.spool.frames or min(self.spool.frames) > floor
        for seq in range(self.floor + 1, floor + 1):  # newly covered
            assert seq in self.spool.dropped or self.store.stored[seq] > 0, f"floor {floor} covers frame {seq}, never stored"
        self.floor = floor

    @invariant()
    def the_watermark_never_moves_back_nor_covers_an_unstored_frame(self) -> None:
        mark = self.hub.seqs.last_durable(AGENT, EPOCH)
        assert mark >= self.watermark, f"the hub's watermark moved back from {self.watermark} to {mark}"
        for seq in range(1, mark + 1):
            assert seq in self.spool.dropped or self.store.stored[seq] > 0, f"watermark {mark} covers frame {seq}, never stored"
        self.watermark = mark
        persisted = self.store.persisted.get((AGENT, EPOCH), 0)
        assert all(seq in self.spool.dropped or self.store.stored[seq] > 0 for seq in range(1, persisted + 1))

    # --- at the end: heal, then everything settles ----------------------------------------

    def teardown(self) -> None:
        if sys.exc_info()[0] is not None:  # a step failed: report that, not what follows from it
            return
        self.store.failing = False
        self.edge.commit()
        last = self.spool.next_seq - 1
        rounds = 0
        while not self._settled(last):
            rounds += 1
            assert rounds <= 50 + last, (
                f"no progress after {rounds} rounds on a reliable link: spool {self.spool.runs()[:5]}, floor "
                f"{self.edge.session.floor}, hub watermark {self.hub.seqs.last_durable(AGENT, EPOCH)}, last {last}"
            )
            self._round()
            self.the_session_keeps_the_spools_account()
            self.the_floor_never_moves_back_nor_covers_an_unstored_frame()
            self.the_watermark_never_moves_back_nor_covers_an_unstored_frame()
        for seq in range(1, last + 1):
            if seq in self.spool.dropped:
                assert self.spool.deleted[seq] == 0
            else:
                assert self.store.stored[seq] >= 1, f"frame {seq} never stored"
                assert self.spool.deleted[seq] == 1, f"frame {seq} deleted {self.spool.deleted[seq]} times"

    def _settled(self, last: int) -> bool:
        return (
            not self.spool.frames
            and self.edge.session.floor == last
            and self.hub.seqs.last_durable(AGENT, EPOCH) == last
            and not self.store.pending
        )

    def _round(self) -> None:
        """One round of a healthy system: writes complete, ackers and retries run, both sides read everything."""
        for wid in sorted(self.store.pending):
            self.store.complete(wid)
        for link in self._open_links():
            assert link.hub is not None
            link.hub.session.brake(0.0, self.now)  # a healthy hub lifts any pace (within a second)
            link.hub.flush()
            while link.hub.acker_step():
                pass
            link.hub.retry()
        for link in self._open_links():
            self.hub_receives_all(link)
            if not link.edge_attached:
                self._hub_notices_close(link)
        if self.edge.link is not None:
            while self.edge.link is not None and self.edge.link.down:
                self.edge.receive(self.edge.link.down.popleft())
        if self.edge.link is not None and self.edge.link.damaged:
            self.edge.lose_connection()  # TCP gives up on a connection that lost data
        if self.edge.link is None:
            self._connect()
        self.edge.pump(self.now, 10_000)
        self.now += 0.1


EdgeHubMachine.TestCase.settings = settings(max_examples=400, stateful_step_count=100, deadline=None)
TestEdgeHubSessions = EdgeHubMachine.TestCase


def test_a_hold_begun_on_a_duplicate_ends_once_the_store_is_back() -> None:
    """The one frame left is stored through a stale connection while its copy, re-sent on the new connection,
    meets a failing store: the hold has no batch to retry, and must still end (and the frame be acknowledged)."""
    m = EdgeHubMachine()
    m.produce(1, spool=True)
    m.connect()
    first = m.edge.link
    assert first is not None and first.hub is not None
    m.hub_receives_all(first)  # hello
    m.edge_receives(1, reorder=False)  # welcome
    m.edge_sends(10)  # frame 1, live, and a status report
    m.hub_receives_all(first)  # frame 1 is being written
    m.edge_loses_connection()
    m.connect()
    second = m.edge.link
    assert second is not None and second.hub is not None
    m.hub_receives_all(second)  # hello: frame 1 is not stored yet, so the welcome is 0
    m.edge_receives(1, reorder=False)
    m.edge_sends(10)  # frame 1 again, as backlog
    m.store_completes(1, newest_first=False)  # the first copy is stored...
    while first.hub.acker_step():
        pass
    m.store_health(failing=True)  # ...then the store fails
    m.hub_receives_all(second)  # the copy is a duplicate: nothing to hold, and not acknowledged while holding
    assert second.hub.session.holding and second.hub.session.held_batch is None
    m.teardown()  # the store comes back: the hold ends (close 1013), the agent reconnects, frame 1 is deleted
    assert m.spool.deleted[1] == 1 and m.store.stored[1] == 1
