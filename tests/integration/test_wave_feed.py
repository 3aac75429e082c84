"""Live waveforms to a bed detail page on real sockets: every accepted chunk of the bed, in order, as sent; only to a
clinician of the bed's ward."""

from __future__ import annotations

import time

import pytest
from support import HubProcess, auth_headers, feed_news2_alarm, get_json, wait_until
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from ingest.wave_feed import decode_chunk
from wire.codec import decode_hub, encode_edge
from wire.messages import Ack, Hello, WaveChunk

pytestmark = pytest.mark.integration


def waves_connect(hub: HubProcess, bed: str, as_: str = "intensivist"):  # type: ignore[no-untyped-def]
    return connect(f"ws://127.0.0.1:{hub.port}/ws/waves?bed={bed}", additional_headers=auth_headers(hub.base, as_))


def test_a_watched_bed_gets_every_accepted_chunk_as_sent_and_other_beds_none(hub: HubProcess) -> None:
    t0 = time.time_ns() // 1_000_000
    chunks = [WaveChunk(seq, "A-01" if seq % 3 else "A-02", "ecg_ii", t0 + seq * 200, 250, 0.005,
                        tuple((seq * 37 + k * 11) % 4000 - 2000 for k in range(50))) for seq in range(1, 31)]  # fmt: skip
    chunks.append(WaveChunk(31, "A-01", "no_such_lead", t0, 250, 0.005, (1, 2)))  # refused by the hub: never shown
    with connect(hub.edge_url, additional_headers=hub.agent_auth("edge-A", "A", ("A-01", "A-02"))) as edge:
        edge.send(encode_edge(Hello("edge-A", 1, "A", ("A-01", "A-02"))).decode())
        decode_hub(edge.recv(timeout=10))  # the hub knows the beds from here on
        with waves_connect(hub, "A-01") as page:
            for c in chunks:
                edge.send(encode_edge(c))
            while not (isinstance(m := decode_hub(edge.recv(timeout=10)), Ack) and m.seq >= 31):
                pass
            want = [c for c in chunks if c.bed == "A-01" and c.lead == "ecg_ii"]
            got = [decode_chunk(page.recv(timeout=10)) for _ in want]  # type: ignore[arg-type]
            assert got == [(c.lead, c.t_first, c.rate_hz, pytest.approx(c.scale), c.samples) for c in want]
            with pytest.raises(TimeoutError):  # nothing else: not A-02's, not the refused lead's
                page.recv(timeout=1)
    stats = wait_until(lambda: (s := get_json(f"{hub.base}/api/stats"))["wave_watchers"] == 0 and s, "the page's watch to end")
    assert stats["wave_feed"]["wave_chunks_to_consoles"] == len(want)


def test_only_a_clinician_of_the_beds_ward_may_watch(hub: HubProcess) -> None:
    feed_news2_alarm(hub, "A", "A-01")  # bed A-01 on the census
    with waves_connect(hub, "A-01", as_="nurse-a"):
        pass
    for as_, bed in (("nurse-b", "A-01"), ("intensivist", "Z-99")):
        with pytest.raises(InvalidStatus) as refused:
            waves_connect(hub, bed, as_=as_)
        assert refused.value.response.status_code == 403, (as_, bed)
