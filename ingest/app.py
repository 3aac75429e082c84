"""The hub's FastAPI application: REST under ``/api``, WebSockets under ``/ws``, console at ``/``.

``create_app`` wires a ``Hub`` to HTTP. Start-up order: the store opens and the
hub reloads its sequence marks and open alarms, then the tick loop starts;
shutdown stops the loop first and then flushes the store. If the hub's core
(tick loop, audit writer) ever stops with an error, ``on_core_failure`` is
called: ``teleicu hub`` then shuts the server down and exits non-zero rather
than serve consoles from a hub that no longer scores or alarms.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from alerts.lifecycle import AlertError
from alerts.policy import PolicyError
from alerts.stats import alarm_stats
from console import STATIC_DIR
from ingest import prometheus
from ingest.edge_endpoint import serve_edge
from ingest.hub import Hub
from wire.vocabulary import BY_KEY

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0  # a console hears from the hub at least this often, even when nothing changed


class AckBody(BaseModel):
    by: str = Field(min_length=1, max_length=80, description="name of the person acknowledging")
    role: str | None = Field(None, max_length=40, description="e.g. bedside_nurse, teleicu_nurse, intensivist")
    ward: str | None = Field(None, max_length=64, description="the ward of a bedside nurse's console")


class SilenceBody(BaseModel):
    by: str = Field(min_length=1, max_length=80)
    reason: str = Field(min_length=1, max_length=200, description="why the alarm is silenced")
    seconds: float = Field(gt=0, le=900, description="at most 15 minutes")


class LimitBody(BaseModel):
    param: str
    low: float | None = None
    high: float | None = None


class SettingsBody(BaseModel):
    spo2_scale: Literal[1, 2] = Field(description="NEWS2 SpO2 scale; 2 only for confirmed hypercapnic respiratory failure")


def create_app(hub: Hub, on_core_failure: Callable[[BaseException], None] | None = None) -> FastAPI:
    def core_done(task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        assert exc is not None
        log.critical("the hub core stopped: %r", exc, exc_info=exc)
        if on_core_failure is not None:
            on_core_failure(exc)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        runner = asyncio.create_task(hub.run(), name="hub")
        runner.add_done_callback(core_done)
        try:
            yield
        finally:
            runner.cancel()
            await asyncio.wait([runner])  # its failure, if any, was reported by core_done
            await hub.stop()

    app = FastAPI(title="teleicu hub", version="0.1.0", lifespan=lifespan)
    app.state.hub = hub
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def console_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"ok": True, "beds": hub.state.n}

    @app.get("/api/beds")
    async def list_beds(ward: str | None = None) -> dict[str, Any]:
        return {"now": hub.clock(), "beds": hub.beds_json(ward)}

    @app.get("/api/beds/{bed}")
    async def get_bed(bed: str) -> dict[str, Any]:
        i = hub.state.index.get(bed)
        if i is None:
            raise HTTPException(404, f"unknown bed {bed!r}")
        now = hub.clock()
        return hub.bed_json(i, now, hub.score(now))

    @app.put("/api/beds/{bed}/settings")
    async def put_settings(bed: str, body: SettingsBody) -> dict[str, Any]:
        try:
            hub.set_spo2_scale(bed, body.spo2_scale)
        except KeyError:
            raise HTTPException(404, f"unknown bed {bed!r}") from None
        return {"bed": bed, "settings": {"spo2_scale": body.spo2_scale}}

    @app.get("/api/beds/{bed}/trend")
    async def trend(
        bed: str,
        param: str,
        since: int | None = Query(None, description="ms since epoch; default one hour before until"),
        until: int | None = Query(None, description="ms since epoch; default now"),
        limit: int = Query(20_000, ge=1, le=200_000),
    ) -> dict[str, Any]:
        if param not in BY_KEY:
            raise HTTPException(422, f"unknown parameter {param!r}")
        if bed not in hub.state.index:
            raise HTTPException(404, f"unknown bed {bed!r}")
        until = hub.clock() if until is None else until
        since = until - 3_600_000 if since is None else since
        if since > until:
            raise HTTPException(422, "since must not be after until")
        points = await hub.store.trend(bed, param, since, until, limit)
        return {
            "bed": bed,
            "param": param,
            "unit": BY_KEY[param].ucum,
            "since": since,
            "until": until,
            "points": [{"t": p.t, "value": p.value, "flags": p.flags} for p in points],
        }

    @app.get("/api/agents")
    async def list_agents() -> dict[str, Any]:
        """Edge agents the hub expects (remembered across restarts) or has seen, and whether they are connected."""
        return {"now": hub.clock(), "agents": hub.agents_json()}

    @app.delete("/api/agents/{agent}")
    async def forget_agent(agent: str) -> dict[str, Any]:
        """Stop expecting a gateway taken out of service: its agent-offline alarm clears and stays cleared."""
        try:
            hub.forget_agent(agent)
        except KeyError:
            raise HTTPException(404, f"unknown agent {agent!r}") from None
        except ValueError as exc:
            raise HTTPException(409, f"{exc}: stop it first") from None
        return {"forgotten": agent}

    @app.get("/api/unmapped")
    async def unmapped_codes(
        device: str | None = Query(None, max_length=64, description="one device id; default every device"),
        limit: int = Query(1000, ge=1, le=10_000),
    ) -> dict[str, Any]:
        """Codes devices send that the vocabulary does not map, per device: how many samples are stored and the last one.

        They are stored as sent and never scored or alarmed on; a hospital's engineer uses this list to see what a
        monitor sends that teleicu does not chart."""
        return {"codes": await hub.store.unmapped_codes(device, limit)}

    @app.get("/api/gaps")
    async def data_gaps(
        bed: str | None = None,
        since: int | None = Query(None, description="ms; default 24 h before until"),
        until: int | None = Query(None, description="ms; default now"),
    ) -> dict[str, Any]:
        """Outages: periods in which no data reached the hub from a bed (backfill may have filled them since)."""
        until = hub.clock() if until is None else until
        since = until - 86_400_000 if since is None else since
        return {"gaps": await hub.store.gaps(since, until, bed)}

    @app.get("/api/alerts")
    async def list_alerts(
        state: Literal["open", "active", "acknowledged", "resolved", "all"] = "open",
        ward: str | None = None,
        bed: str | None = None,
        kind: str | None = Query(None, description="exact kind, or a family such as 'limit' or 'technical'"),
        priority: Literal["high", "medium", "low"] | None = None,
        category: Literal["physiological", "technical"] | None = None,
        limit: int = Query(500, ge=1, le=10_000),
    ) -> dict[str, Any]:
        if state in ("resolved", "all"):
            alerts = await hub.store.alerts(None if state == "all" else "resolved", limit)
        else:
            alerts = [a.to_json() for a in hub.book.list_open()]
            if state != "open":
                alerts = [a for a in alerts if a["state"] == state]

        def keep(a: dict[str, Any]) -> bool:
            return (
                (ward is None or a["ward"] == ward)
                and (bed is None or a["bed"] == bed)
                and (kind is None or a["kind"] == kind or a["kind"].split(":", 1)[0] == kind)
                and (priority is None or a["priority"] == priority)
                and (category is None or a["category"] == category)
            )

        return {"alerts": [a for a in alerts if keep(a)][:limit]}

    @app.post("/api/alerts/{alert_id}/ack")
    async def ack_alert(alert_id: int, body: AckBody) -> dict[str, Any]:
        a = hub.book.by_id.get(alert_id)
        if a is not None and body.role == "bedside_nurse" and body.ward != a.ward:
            raise HTTPException(403, f"a bedside nurse of ward {body.ward!r} cannot acknowledge an alarm of ward {a.ward!r}")
        try:
            return hub.acknowledge(alert_id, body.by)
        except AlertError as exc:
            raise HTTPException(409, str(exc)) from None

    @app.post("/api/alerts/{alert_id}/silence")
    async def silence_alert(alert_id: int, body: SilenceBody) -> dict[str, Any]:
        try:
            return hub.silence(alert_id, body.by, body.reason, body.seconds)
        except AlertError as exc:
            raise HTTPException(409, str(exc)) from None

    @app.get("/api/alerts/{alert_id}/history")
    async def alert_history(alert_id: int) -> dict[str, Any]:
        events = await hub.store.alert_history(alert_id)
        if not events:
            raise HTTPException(404, f"no alarm {alert_id}")
        return {"alert": events[-1]["alert"], "events": [{k: e[k] for k in ("at", "event", "by", "note")} for e in events]}

    @app.get("/api/alarm-stats")
    async def alarm_statistics(
        since: int | None = Query(None, description="ms; default 24 h before until"),
        until: int | None = Query(None, description="ms; default now"),
    ) -> dict[str, Any]:
        until = hub.clock() if until is None else until
        since = until - 86_400_000 if since is None else since
        if since >= until:
            raise HTTPException(422, "since must be before until")
        return alarm_stats(await hub.store.audit_between(since, until), since, until, hub.state.n)

    @app.put("/api/beds/{bed}/limits")
    async def put_limit(bed: str, body: LimitBody) -> dict[str, Any]:
        i = hub.state.index.get(bed)
        if i is None:
            raise HTTPException(404, f"unknown bed {bed!r}")
        try:
            lim = hub.engine.set_bed_limit(bed, hub.state.beds[i].ward, body.param, body.low, body.high)
        except PolicyError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"bed": bed, "param": lim.param, "low": lim.low, "high": lim.high, "delay_s": lim.delay_s,
                "hysteresis": lim.hysteresis, "priority": lim.priority.code}  # fmt: skip

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        """Prometheus text exposition of the same counters as /api/stats."""
        return PlainTextResponse(prometheus.render(hub.stats()), media_type=prometheus.CONTENT_TYPE)

    @app.get("/api/stats")
    async def stats() -> dict[str, Any]:
        return hub.stats()

    @app.websocket("/ws/edge")
    async def edge_ws(ws: WebSocket) -> None:
        await serve_edge(hub, ws)

    @app.websocket("/ws/console")
    async def console_ws(ws: WebSocket, ward: str | None = None) -> None:
        """A console watching all wards, or one (``?ward=A``: a bedside nurse's console).

        The console confirms every alarm it shows by sending
        ``{"type": "delivered", "alerts": [ids]}``; an alarm event no console
        confirms raises the ``undelivered`` technical alarm.
        """
        await ws.accept()
        sub = hub.feed.subscribe(ward)

        async def confirmations() -> None:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return
                try:
                    body = json.loads(msg.get("text") or "{}")
                    ids = body.get("alerts") if isinstance(body, dict) and body.get("type") == "delivered" else None
                    if isinstance(ids, list):
                        hub.delivered([i for i in ids[:10_000] if type(i) is int])
                except ValueError:
                    pass  # a console sending junk gets nothing from it

        reader = asyncio.create_task(confirmations())
        try:
            await ws.send_json(
                {
                    "type": "snapshot",
                    "now": hub.clock(),
                    "staleness_s": hub.cfg.staleness_s,
                    "beds": hub.beds_json(ward),
                    "alerts": [a.to_json() for a in hub.book.list_open() if ward is None or a.ward == ward],
                }
            )
            while True:
                try:
                    text = await asyncio.wait_for(sub.queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    text = json.dumps({"type": "heartbeat", "now": hub.clock()})
                if text is None:
                    await ws.close(code=1013, reason="console fell behind; reconnect for a fresh snapshot")
                    return
                await ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError):  # RuntimeError: sending after the client left
            pass
        finally:
            hub.feed.unsubscribe(sub)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await reader

    return app
