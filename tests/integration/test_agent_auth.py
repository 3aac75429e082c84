"""Edge agents prove who they are, on a real hub and real sockets.

- A wrong secret, an unknown agent and no credentials at all get the same
  refusal, so the hub says nothing about which agents exist.
- An agent that sends data for a bed not registered to it is refused: nothing
  of it is stored, it is counted, and the audit log names the agent and bed.
- Revoking an agent with ``teleicu agents revoke`` cuts its live connection
  within a second, and its secret opens nothing afterwards.
"""

from __future__ import annotations

import sqlite3
import time
import urllib.error

import pytest
from support import HubProcess, agent_headers, get_json, teleicu, wait_until
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from wire.codec import decode_hub, encode_edge
from wire.messages import Ack, ErrorReport, Hello, ObsFrame, Observation, Welcome

pytestmark = pytest.mark.integration


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def refusal(hub: HubProcess, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
    with pytest.raises(InvalidStatus) as refused:
        connect(hub.edge_url, additional_headers=headers, open_timeout=10)
    r = refused.value.response
    return r.status_code, r.body or b"", {k.lower(): v for k, v in r.headers.raw_items() if k.lower() not in ("date",)}


def audit_rows(hub: HubProcess, action: str) -> list[tuple]:
    with sqlite3.connect(hub.db) as db:
        return db.execute("SELECT actor, target, detail, source FROM audit_log WHERE action = ? ORDER BY seq", (action,)).fetchall()


def test_a_wrong_secret_an_unknown_agent_and_no_credentials_look_the_same(hub: HubProcess) -> None:
    real = hub.agent_auth("edge-A", "A", ("A-01",))
    wrong = agent_headers("edge-A", "not-the-secret-but-long-enough-to-look-like-one")
    unknown = agent_headers("edge-nobody", hub.secrets["edge-A"])  # a real secret under another name
    answers = [refusal(hub, h) for h in (wrong, unknown, {}, {"Authorization": "Basic !!!"})]
    assert answers[0][0] == 403 and all(a == answers[0] for a in answers), answers
    with connect(hub.edge_url, additional_headers=real) as ws:  # the right one opens
        ws.send(encode_edge(Hello("edge-A", 1, "A", ("A-01",))).decode())
        assert isinstance(decode_hub(ws.recv(timeout=10)), Welcome)
    stats = get_json(f"{hub.base}/api/stats")["counters"]
    assert stats["agents_refused"] == 4
    refused = audit_rows(hub, "edge.refused")
    assert [(a, t) for a, t, _d, _s in refused] == [("agent:edge-A", "agent:edge-A"), ("agent:edge-nobody", "agent:edge-nobody")]


def test_data_for_a_bed_the_agent_does_not_own_is_refused_counted_audited_and_never_stored(hub: HubProcess) -> None:
    hub.agent_auth("edge-B", "B", ("B-09",))  # another gateway owns B-09
    t = now_ms()
    with connect(hub.edge_url, additional_headers=hub.agent_auth("edge-A", "A", ("A-01", "A-02"))) as ws:
        ws.send(encode_edge(Hello("edge-A", 1, "A", ("A-01", "A-02", "B-09"))).decode())  # it announces a bed not its own
        welcome, told = [decode_hub(ws.recv(timeout=10)) for _ in range(2)]  # the welcome first: an agent waits for it
        assert isinstance(welcome, Welcome), welcome
        assert isinstance(told, ErrorReport) and told.code == "unregistered_beds" and "B-09" in told.detail, told
        frame = ObsFrame(1, (Observation("A-01", "hr", 80.0, t, t, "m"), Observation("B-09", "hr", 150.0, t, t, "m"),
                             Observation("B-09", "spo2", 70.0, t, t, "m")))  # fmt: skip
        ws.send(encode_edge(frame).decode())
        got = []
        while not any(isinstance(m, Ack) for m in got):
            got.append(decode_hub(ws.recv(timeout=10)))
    [rejected] = [m for m in got if isinstance(m, ErrorReport) and m.code == "rejected"]
    assert {r["bed"] for r in rejected.rejected} == {"B-09"} and len(rejected.rejected) == 2
    with sqlite3.connect(hub.db) as db:
        assert db.execute("SELECT count(*) FROM numerics WHERE bed = 'B-09'").fetchone()[0] == 0  # nothing of it stored
        assert db.execute("SELECT count(*) FROM numerics WHERE bed = 'A-01'").fetchone()[0] == 1  # its own bed is
    assert get_json(f"{hub.base}/api/stats")["counters"]["values_for_unregistered_beds"] == 2
    rows = wait_until(lambda: audit_rows(hub, "edge.unregistered_bed"), "the audit entry", timeout=10)
    assert [(a, t) for a, t, _d, _s in rows] == [("agent:edge-A", "bed:B-09")]  # once per connection and bed
    with pytest.raises(urllib.error.HTTPError) as unknown:  # nor is the bed on the census through edge-A
        get_json(f"{hub.base}/api/beds/B-09")
    assert unknown.value.code == 404


def test_a_hello_naming_another_agent_closes_the_connection(hub: HubProcess) -> None:
    with connect(hub.edge_url, additional_headers=hub.agent_auth("edge-A", "A", ("A-01",))) as ws:
        ws.send(encode_edge(Hello("edge-B", 1, "B", ("B-01",))).decode())
        err = decode_hub(ws.recv(timeout=10))
        assert isinstance(err, ErrorReport) and "edge-A" in err.detail
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def test_revoking_an_agent_cuts_its_live_connection_within_a_second(hub: HubProcess) -> None:
    headers = hub.agent_auth("edge-R", "R", ("R-01",))
    with connect(hub.edge_url, additional_headers=headers) as ws:
        ws.send(encode_edge(Hello("edge-R", 1, "R", ("R-01",))).decode())
        assert isinstance(decode_hub(ws.recv(timeout=10)), Welcome)
        r = teleicu("agents", "revoke", "edge-R", "--db", str(hub.db))
        assert r.returncode == 0, r.stderr
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=5)
        cut_at = now_ms()
    with sqlite3.connect(hub.db) as db:  # when the revocation was committed, as the admin command audited it
        (revoked_at,) = db.execute("SELECT at FROM audit_log WHERE action = 'agent.revoke' AND target = 'agent:edge-R'").fetchone()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008 and "revoked" in closed.value.rcvd.reason
    assert cut_at - revoked_at < 1000, f"the connection lived {cut_at - revoked_at} ms after the revocation"
    assert refusal(hub, headers)[0] == 403  # and the secret opens nothing any more
    assert get_json(f"{hub.base}/api/stats")["counters"]["agents_cut"] == 1
