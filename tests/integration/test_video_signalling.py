"""The hub's video signalling on real sockets, with a scripted edge link: who may watch, what is relayed to whom,
the viewer cap, honest reasons, clean-up when either end goes, and the audit of every view and talk."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest
from support import HubProcess, auth_headers, feed_news2_alarm, get_json, wait_until
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from wire.video_signal import Signal, decode_signal, encode_signal

pytestmark = pytest.mark.integration

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def viewer(hub: HubProcess, bed: str, as_: str = "intensivist") -> ClientConnection:
    return connect(f"ws://127.0.0.1:{hub.port}/ws/video?bed={bed}", additional_headers=auth_headers(hub.base, as_), open_timeout=10)


@contextlib.contextmanager
def edge_link(hub: HubProcess, agent: str, ward: str, beds: tuple[str, ...], cameras: tuple[tuple[str, bool], ...]) -> Iterator[ClientConnection]:
    with connect(f"ws://127.0.0.1:{hub.port}/ws/edge/video", additional_headers=hub.agent_auth(agent, ward, beds), open_timeout=10) as ws:
        ws.send(encode_signal(Signal("hello", cameras=cameras)))
        yield ws


def recv(ws: ClientConnection, *, session_required: bool = True) -> Signal:
    return decode_signal(ws.recv(timeout=10), session_required=session_required)


def camera_of(hub: HubProcess, bed: str) -> dict:
    return get_json(f"{hub.base}/api/beds/{bed}/video")


def audit_of(hub: HubProcess, bed: str, action: str) -> list[dict]:
    return [e for e in get_json(f"{hub.base}/api/audit?target=bed:{bed}", as_="admin")["entries"] if e["action"] == action]


def test_a_view_is_relayed_within_its_session_and_both_ends_hear_when_the_other_goes(hub: HubProcess) -> None:
    feed_news2_alarm(hub, "A", "A-01")
    with edge_link(hub, "cam-A", "A", ("A-01",), (("A-01", True),)) as edge:
        wait_until(lambda: camera_of(hub, "A-01")["camera"], "the hub to know A-01's camera")
        with viewer(hub, "A-01") as page:
            hello = recv(page)
            assert hello.type == "session" and hello.bed == "A-01" and hello.talkback is True
            assert recv(page).state == "connecting"
            watch = recv(edge)
            assert watch.type == "watch" and watch.session == hello.session and watch.bed == "A-01"
            edge.send(encode_signal(Signal("offer", session=watch.session, sdp=SDP)))
            offer = recv(page)
            assert (offer.type, offer.sdp) == ("offer", SDP)
            page.send(json.dumps({"type": "answer", "sdp": SDP}))  # a viewer names no session: its socket is one
            answer = recv(edge)
            assert (answer.type, answer.session, answer.sdp) == ("answer", watch.session, SDP)
            page.send(json.dumps({"type": "candidate", "candidate": "candidate:1 1 udp 2 127.0.0.1 5000 typ host", "sdpMid": "0",
                                  "sdpMLineIndex": 0}))  # fmt: skip
            assert recv(edge).candidate.endswith("typ host")
            edge.send(encode_signal(Signal("camera", bed="A-01", running=True)))
            edge.send(encode_signal(Signal("state", session=watch.session, state="live")))
            assert recv(page).state == "live"
            assert camera_of(hub, "A-01") | {"viewers": 1} == {"bed": "A-01", "camera": True, "running": True, "stopped_because": None,
                                                                "talkback": True, "viewers": 1}  # fmt: skip
            page.send(json.dumps({"type": "talk", "on": True}))
            assert (recv(edge).type, True) == ("talk", True)
            page.send(json.dumps({"type": "talk", "on": False}))
            assert recv(edge).on is False
        # the page went away without hanging up: the edge is told to hang up
        bye = recv(edge)
        assert (bye.type, bye.session) == ("hangup", watch.session)
        assert wait_until(lambda: camera_of(hub, "A-01")["viewers"] == 0, "the session to end")
        # the edge goes: a viewer that opens now is told why, in words
        with viewer(hub, "A-01") as page:
            recv(page)
            recv(page)
            recv(edge)
            edge.close()
            failed = recv(page)
            assert (failed.state, failed.reason) == ("failed", "edge offline: the camera gateway disconnected")
            assert recv(page).type == "hangup"
    with viewer(hub, "A-01") as page:
        refused = recv(page, session_required=False)
        assert (refused.state, refused.reason) == ("failed", "edge offline: no camera gateway is connected for bed A-01")
        with pytest.raises(ConnectionClosed):
            page.recv(timeout=10)
    views = wait_until(lambda: len(v := audit_of(hub, "A-01", "video.view")) >= 2 and v, "both views in the audit log")
    first = min(views, key=lambda e: e["at"])
    assert first["actor"] == "intensivist" and first["detail"]["to"] >= first["detail"]["live_from"] >= first["detail"]["from"]
    talks = audit_of(hub, "A-01", "video.talk")
    assert len(talks) == 1 and talks[0]["detail"]["from"] <= talks[0]["detail"]["to"]
    assert len(audit_of(hub, "A-01", "video.view_started")) == 2


def test_the_viewer_cap_a_failed_camera_and_ward_scope(hub: HubProcess, tmp_path) -> None:
    for bed in ("A-01", "B-01", "A-02"):
        feed_news2_alarm(hub, bed[0], bed, agent=f"edge-{bed}")
    with edge_link(hub, "cam-AB", "A", ("A-01", "B-01"), (("A-01", False), ("B-01", True), ("A-02", True))) as edge:
        wait_until(lambda: camera_of(hub, "A-01")["camera"], "the hub to know the cameras")
        assert camera_of(hub, "A-02")["camera"] is False  # a census bed, but not registered to this agent: its camera is not taken
        with pytest.raises(InvalidStatus) as other_ward:
            viewer(hub, "B-01", as_="nurse-a")
        assert other_ward.value.response.status_code == 403
        with contextlib.ExitStack() as stack:
            pages = [stack.enter_context(viewer(hub, "A-01", as_=who)) for who in ("intensivist", "teleicu-nurse", "nurse-a", "intensivist")]
            sessions = [recv(p) for p in pages]
            assert [s.talkback for s in sessions] == [False] * 4  # this bed's camera has talk-back off
            with viewer(hub, "A-01") as fifth:  # the hub file's default cap is 4
                refused = recv(fifth, session_required=False)
                assert refused.reason == "viewer cap: 4 people already watch bed A-01, the most allowed at once"
            watches = [recv(edge) for _ in pages]
            assert {w.session for w in watches} == {s.session for s in sessions}
            # a ward nurse may watch her ward's bed, never talk (talk-back is for remote clinicians)
            pages[2].send(json.dumps({"type": "talk", "on": True}))
            assert recv(pages[2]).state == "connecting"  # the state is restated, with why
            # the camera could not open: each viewer hears the gateway's reason
            for w in watches:
                edge.send(encode_signal(Signal("state", session=w.session, state="failed", reason="camera not found: /dev/video7 does not exist")))
            for p in pages:
                while (m := recv(p)).type != "state" or m.state == "connecting":
                    pass
                assert (m.state, m.reason) == ("failed", "camera not found: /dev/video7 does not exist")
                assert recv(p).type == "hangup"
        assert wait_until(lambda: camera_of(hub, "A-01")["viewers"] == 0, "the sessions to end")
        for who, may_talk in (("nurse-b", False), ("teleicu-nurse", True)):  # B-01's camera has talk-back on
            with viewer(hub, "B-01", as_=who) as page:
                assert recv(page).talkback is may_talk, who
                recv(edge)
            assert recv(edge).type == "hangup"
    with viewer(hub, "B-01", as_="nurse-b") as page:
        assert recv(page, session_required=False).reason.startswith("edge offline")


def test_agents_prove_who_they_are_and_bad_messages_are_refused(hub: HubProcess) -> None:
    with pytest.raises(InvalidStatus) as nobody:
        connect(f"ws://127.0.0.1:{hub.port}/ws/edge/video", open_timeout=10)
    assert nobody.value.response.status_code == 403
    feed_news2_alarm(hub, "A", "A-01")
    with edge_link(hub, "cam-A", "A", ("A-01",), (("A-01", True),)) as edge:
        edge.send("not json")  # counted and logged; the link stays up for the other sessions
        wait_until(lambda: camera_of(hub, "A-01")["camera"], "the hub to know A-01's camera")
        with viewer(hub, "A-01") as page:
            recv(page)
            page.send('{"type": "answer", "sdp": "not an SDP"}')
            recv(page)  # connecting
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    page.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
            assert "sdp: not a session description" in closed.value.rcvd.reason
    assert get_json(f"{hub.base}/api/stats", as_="admin")["counters"]["video_bad_signals"] == 1
