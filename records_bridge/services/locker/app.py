"""The locker's application: the database (migrated to head), staff sign-in through the hub, the SMS gateway, the
share-link secret, the patient's page and its API, security headers, and the expiry sweeper (a task that closes
consents whose expiry has passed). The clock is injected, so tests move time instead of sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

from ingest.security_headers import SecurityHeaders
from records_bridge.services.db import make_engine
from records_bridge.services.hub_identity import HubIdentity
from records_bridge.services.locker import routes_patient, routes_share, routes_staff
from records_bridge.services.locker.problems import answer_errors_as_problems
from records_bridge.services.locker.share_tokens import MIN_SECRET
from records_bridge.services.locker.store import Store, migrate
from records_bridge.services.ratelimit import RateLimiter
from records_bridge.services.sms import SmsGateway

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
SWEEP_S = 30.0
CODES_PER_MINUTE_PER_ADDRESS = 6  # texted sign-in codes one client address may ask for (each number has its own limit too)
CODES_BURST_PER_ADDRESS = 10


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def read_secret(path: Path) -> bytes:
    """The share-link secret from its file (surrounding blanks dropped); ``ValueError`` if shorter than 32 bytes."""
    secret = path.read_bytes().strip()
    if len(secret) < MIN_SECRET:
        raise ValueError(f"{path}: the share-link secret must be at least {MIN_SECRET} bytes (e.g. `openssl rand -hex 32 > {path.name}`)")
    return secret


def create_app(url: str, *, hub_url: str, sms: SmsGateway, share_secret: bytes, clock: Callable[[], int] = wall_ms,
               sweep_s: float = SWEEP_S, public_url: str | None = None, run_migrations: bool = True,
               hub_verify: bool | str = True) -> FastAPI:  # fmt: skip
    """The locker over the database at ``url``; staff are signed in by the hub at ``hub_url``."""
    if len(share_secret) < MIN_SECRET:
        raise ValueError(f"the share-link secret must be at least {MIN_SECRET} bytes")
    engine = make_engine(url)
    if run_migrations:
        migrate(engine)
    store = Store(engine, otp_key=share_secret + b"/otp")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_sweep(store, clock, sweep_s), name="locker-expiry-sweeper")
        try:
            yield
        finally:
            sweeper.cancel()
            await asyncio.wait([sweeper])  # its end, without swallowing a cancellation of the shutdown itself
            await app.state.identity.close()

    app = FastAPI(title="teleicu locker", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.engine, app.state.store, app.state.clock = engine, store, clock
    app.state.identity = HubIdentity(hub_url, verify=hub_verify)
    app.state.code_limiter = RateLimiter(CODES_PER_MINUTE_PER_ADDRESS, CODES_BURST_PER_ADDRESS)
    app.state.sms, app.state.share_secret, app.state.public_url = sms, share_secret, (public_url or "").rstrip("/") or None
    answer_errors_as_problems(app)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response('{"status":"ok"}', media_type="application/json")

    @app.get("/")
    async def page() -> FileResponse:
        return FileResponse(STATIC / "locker.html", headers={"Cache-Control": "no-store"})

    app.include_router(routes_patient.router)
    app.include_router(routes_staff.router)
    app.include_router(routes_share.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(SecurityHeaders)
    return app


async def _sweep(store: Store, clock: Callable[[], int], every_s: float) -> None:
    """Expire due consents and delete spent sign-in codes every ``every_s`` seconds until cancelled; a failed round is
    logged and the next one runs."""
    while True:
        try:
            closed = await run_in_threadpool(store.expire_due, clock())
            if closed:
                log.info("expired %d consent(s)", len(closed))
            pruned = await run_in_threadpool(store.prune_codes, clock())
            if pruned:
                log.info("deleted %d spent sign-in code(s)", pruned)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the database may be away for a moment; try again next round
            log.exception("the expiry sweep failed; trying again in %.0f s", every_s)
        await asyncio.sleep(every_s)
