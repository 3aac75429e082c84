"""The waveform message for bed detail pages: round trip, malformed input refused with ValueError, bounded queues."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.wave_feed import QUEUE_CHUNKS, WaveFeed, decode_chunk, encode_chunk
from wire.messages import WaveChunk

chunks = st.builds(WaveChunk, seq=st.just(1), bed=st.just("A-01"), lead=st.sampled_from(["ecg_ii", "pleth", "resp"]),
                   t_first=st.integers(0, 2**52), rate_hz=st.integers(1, 1000), scale=st.floats(0.0001220703125, 8.0, width=32),
                   samples=st.lists(st.integers(-32768, 32767), max_size=500).map(tuple))  # fmt: skip


@given(chunks)
def test_a_chunk_comes_back_as_sent(c: WaveChunk) -> None:
    assert decode_chunk(encode_chunk(c)) == (c.lead, c.t_first, c.rate_hz, c.scale, c.samples)


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_value_error(data: bytes) -> None:
    try:
        decode_chunk(data)
    except ValueError:
        pass


def test_truncated_and_padded_messages_are_refused() -> None:
    data = encode_chunk(WaveChunk(1, "A-01", "ecg_ii", 1000, 250, 0.005, (1, 2, 3)))
    for bad in (data[:-1], data + b"\0", data[:5], b"\x02" + data[1:]):
        with pytest.raises(ValueError):
            decode_chunk(bad)


def test_a_page_that_falls_behind_loses_chunks_not_the_hub() -> None:
    async def go() -> None:
        feed = WaveFeed()
        w = feed.watch("A-01")
        for k in range(QUEUE_CHUNKS + 10):
            feed.publish(WaveChunk(k, "A-01", "ecg_ii", k * 200, 250, 0.005, (k,)))
            feed.publish(WaveChunk(k, "A-02", "ecg_ii", k * 200, 250, 0.005, (k,)))  # nobody watches A-02
        assert w.queue.qsize() == QUEUE_CHUNKS
        assert feed.counters == {"wave_chunks_to_consoles": QUEUE_CHUNKS, "wave_chunks_console_full": 10}
        feed.unwatch(w)
        assert feed.watching == 0

    asyncio.run(go())
