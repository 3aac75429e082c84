"""The bridge facing a set-up fault rather than a bad event: it waits (and says so), it never parks.

A wrong EHR URL, a redirecting proxy, a 404/405/415 from something that is not
the EHR, a hub whose outbox ends before the cursor, a malformed poll answer,
and a second bridge on the same state file. The EHR here is the real app (in
process, over httpx's ASGI transport); the redirecting proxy and the broken hub
answers are scripted with httpx's mock transport, being faults of other parts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fhir_stay import CTX, admitted

from records_bridge.bridge.cursor import CursorStore, StateInUse
from records_bridge.bridge.fhir_sink import FhirSink
from records_bridge.bridge.follower import Follower
from records_bridge.bridge.hub_client import HubClient
from records_bridge.bridge.metrics import BridgeMetrics
from records_bridge.bridge.outcomes import Poison, Retry
from records_bridge.fhir import writes_for
from records_bridge.services.db import make_engine
from records_bridge.services.ehr.app import create_app
from records_bridge.services.ehr.clients import add_client
from records_bridge.services.ehr.store import migrate


def ehr_sink(tmp_path: Path, base: str, client: str) -> FhirSink:
    url = f"sqlite+pysqlite:///{tmp_path / 'ehr.sqlite3'}"
    engine = make_engine(url)
    migrate(engine)
    secret = add_client(engine, client, "writer")
    engine.dispose()
    sink = FhirSink(base, secret, CTX)
    sink.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(url)), base_url="http://ehr")
    return sink


def scripted_sink(status: int, headers: dict[str, str] | None = None, body: object = None) -> FhirSink:
    sink = FhirSink("http://ehr/fhir", "secret", CTX)
    sink.http = httpx.AsyncClient(transport=httpx.MockTransport(lambda _r: httpx.Response(status, headers=headers, json=body)))
    return sink


def test_a_wrong_ehr_url_waits_instead_of_parking(tmp_path: Path) -> None:
    async def go() -> None:
        wrong = ehr_sink(tmp_path, "http://ehr", "wrong")  # the FHIR base is /fhir
        with pytest.raises(Retry, match="CapabilityStatement|no FHIR server"):
            await wrong.ready()
        with pytest.raises(Retry, match="404"):
            await wrong.handle(admitted())
        right = ehr_sink(tmp_path, "http://ehr/fhir", "right")
        await right.ready()
        await right.handle(admitted())
        assert right.writes == len(writes_for(admitted(), CTX))

    asyncio.run(go())


@pytest.mark.parametrize("status", [301, 308, 401, 403, 404, 405, 408, 415, 429, 500, 502, 503])
def test_answers_that_say_nothing_about_the_resource_are_retried(status: int) -> None:
    async def go() -> None:
        sink = scripted_sink(status, {"Location": "https://ehr/fhir"} if 300 <= status < 400 else None,
                             {"resourceType": "OperationOutcome", "issue": ["not a dict", {"code": "x"}]})  # fmt: skip
        with pytest.raises(Retry):
            await sink.handle(admitted())

    asyncio.run(go())


@pytest.mark.parametrize("status", [400, 409, 412, 413, 422])
def test_a_refusal_of_the_resource_itself_is_poison(status: int) -> None:
    async def go() -> None:
        with pytest.raises(Poison, match=f"\\({status}\\): bad thing"):
            await scripted_sink(status, body={"resourceType": "OperationOutcome", "issue": [{"diagnostics": "bad thing"}]}).handle(admitted())

    asyncio.run(go())


def test_one_bridge_per_state_file(tmp_path: Path) -> None:
    first = CursorStore(tmp_path / "state.sqlite3")
    with pytest.raises(StateInUse, match="another teleicu bridge"):
        CursorStore(tmp_path / "state.sqlite3")
    first.close()
    CursorStore(tmp_path / "state.sqlite3").close()  # free again


def hub_answering(*bodies: object) -> HubClient:
    answers = iter(bodies)

    def reply(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/login"):
            return httpx.Response(200, json={"access_token": "a", "refresh_token": "r", "expires_at": 4_102_444_800_000})
        return httpx.Response(200, json=next(answers))

    hub = HubClient("http://hub", "records-bridge", "pw")
    hub.http = httpx.AsyncClient(transport=httpx.MockTransport(reply))
    return hub


def test_malformed_outbox_answers_are_retried_never_taken() -> None:
    async def go() -> None:
        for body in ([], {"events": "no"}, {"events": [], "last_id": "7"}, {"events": [{"type": "x"}], "last_id": 1},
                     {"events": [{"id": 3}], "last_id": 3}, {"events": ["junk"], "last_id": 1}):  # fmt: skip
            with pytest.raises(Retry):
                await hub_answering(body).events(after=5 if body == {"events": [{"id": 3}], "last_id": 3} else 0)

    asyncio.run(go())


def test_an_outbox_that_ends_before_the_cursor_stops_the_sink_visibly(tmp_path: Path) -> None:
    class Idle:
        name = "ehr"

        async def handle(self, event) -> None:  # type: ignore[no-untyped-def]
            raise AssertionError("nothing may be delivered")

    cursors = CursorStore(tmp_path / "state.sqlite3")
    cursors.advance("ehr", 10)
    metrics = BridgeMetrics()
    hub = hub_answering(*[{"events": [], "last_id": 3}] * 50)  # the hub's state was restored from an older backup

    async def go() -> None:
        task = asyncio.create_task(Follower(hub, [Idle()], cursors, metrics, backoff=(0.01, 0.02), wait_s=0).run())
        await asyncio.sleep(0.3)
        task.cancel()
        await asyncio.wait([task])

    asyncio.run(go())
    seen = metrics.snapshot()
    assert seen["teleicu_bridge_failing{sink=ehr}"] == 1 and seen["teleicu_bridge_retries_total{sink=ehr}"] >= 3, seen
    assert cursors.position("ehr") == 10
    cursors.close()
