"""The floor an agent reports never covers a frame the hub has not acknowledged (the wave-1 ECG loss).

Chunks and numerics are queued, committed to the spool, acknowledged by a
model hub in any order, and status reports (which carry the session's floor,
``Uplink.report``) are taken at any moment between. Every frame numbered after a report must be
numbered above that report's floor, and every frame at or below a floor must
have been acknowledged: otherwise the hub raises its watermark over it, takes
it for a duplicate when it arrives and never stores it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.config import UplinkConfig
from edge_agent.events import WaveSegment
from edge_agent.uplink import Uplink
from wire.codec import decode_edge, encode_hub
from wire.messages import Ack, Observation, WaveChunk

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("obs"), st.integers(1, 4)),
        st.tuples(st.just("wave"), st.integers(1, 3)),
        st.tuples(st.just("commit"), st.just(0)),
        st.tuples(st.just("status"), st.just(0)),
        st.tuples(st.just("ack"), st.integers(0, 1_000)),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(ops=OPS)
def test_status_floor_never_covers_a_queued_or_unacknowledged_frame(ops: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        up = Uplink(UplinkConfig(url="ws://127.0.0.1:9/ws/edge"), "edge-T", "T", ["T-1"], Path(tmp) / "spool.sqlite3")
        acked: set[int] = set()
        known: set[int] = set()  # frames seen in the spool so far
        floor = 0  # the highest floor reported
        t = 1_000
        for op, n in ops:
            t += 10
            if op == "obs":
                for i in range(n):
                    up.add_observation(Observation("T-1", "hr", 60.0 + i, t, t, "mon", 0))
            elif op == "wave":
                up.add_wave(WaveSegment("T-1", "ecg_ii", t, 250, 0.005, tuple(range(n * 50))))
            elif op == "commit":
                up.commit()
                spooled = {seq for seq, _data in up.spool.read(0, 2**62, 10_000)}
                new = spooled - known
                assert all(seq > floor for seq in new), f"frames {sorted(new)} numbered at or below a reported floor {floor}"
                for seq, data in up.spool.read(0, 2**62, 10_000):  # each frame carries the number it is spooled under
                    assert decode_edge(data).seq == seq
                known |= new
            elif op == "status":
                reported = up.report()["floor"]
                assert reported >= floor, "the floor moved backwards"
                unacked = sorted(s for s in known if s <= reported and s not in acked)
                assert not unacked, f"floor {reported} covers unacknowledged frames {unacked}"
                floor = reported
            else:  # the hub stores one spooled frame and acknowledges it (out of order, as live-before-backlog does)
                waiting = sorted(known - acked)
                if waiting:
                    seq = waiting[n % len(waiting)]
                    up.receive(encode_hub(Ack(0, (seq,))))
                    acked.add(seq)
        up.close()


def test_recorder_sees_waveform_chunks_with_their_numbers_once_spooled(tmp_path: Path) -> None:
    up = Uplink(UplinkConfig(url="ws://127.0.0.1:9/ws/edge"), "edge-T", "T", ["T-1"], tmp_path / "spool.sqlite3")
    seen: list[Observation | WaveChunk] = []
    up.recorder = seen.extend
    up.add_wave(WaveSegment("T-1", "ecg_ii", 5_000, 250, 0.005, tuple(range(100))))
    up.add_observation(Observation("T-1", "hr", 72.0, 5_000, 5_001, "mon", 0))
    assert seen == [] and up.report()["floor"] == 0  # queued, not spooled: no number, under no floor
    up.commit()
    [chunk, obs] = seen
    assert isinstance(chunk, WaveChunk) and chunk.seq == 1 and chunk.samples == tuple(range(100))
    assert obs == Observation("T-1", "hr", 72.0, 5_000, 5_001, "mon", 0)
    assert [seq for seq, _ in up.spool.read(0, 100, 100)] == [1, 2]
    up.close()
