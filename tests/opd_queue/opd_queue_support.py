"""Support for the OPD queue's tests: a frozen clock, a database of each kind, the app under uvicorn on a real socket,
a facility laid out through the admin API, and small HTTP helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from support import serving, token

from records_bridge.services.queue.app import create_app
from records_bridge.services.sms import LogGateway

IST = ZoneInfo("Asia/Kolkata")


def ist_ms(y: int, mo: int, d: int, h: int = 9, mi: int = 0, s: int = 0) -> int:
    return int(datetime(y, mo, d, h, mi, s, tzinfo=IST).timestamp() * 1000)


@dataclass
class FrozenClock:
    """Milliseconds since the epoch that move only when a test moves them."""

    now: int = field(default_factory=lambda: ist_ms(2024, 5, 1))

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


@dataclass
class Served:
    base: str
    clock: FrozenClock
    sms: LogGateway
    app: Any
    http: httpx.Client

    def staff(self, hub_base: str, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(hub_base, user)}"}


@contextmanager
def serve_queue(db_url: str, hub_base: str, tmp: Path, clock: FrozenClock | None = None, **kw: Any) -> Iterator[Served]:
    """The queue app (clock injected) under uvicorn in a thread on a free port; stopped afterwards."""
    clock = clock or FrozenClock()
    sms = LogGateway(tmp / "sms.jsonl")
    app = create_app(db_url, hub_url=hub_base, sms=sms, clock=clock, **kw)
    with serving(app, "queue service") as base, httpx.Client(base_url=base, timeout=10) as http:
        yield Served(base, clock, sms, app, http)


def lay_out(s: Served, hub_base: str, facility: str = "phc-jaipur") -> None:
    """A facility with one department, two counters and two queues (MED: reminders 2 ahead; ORT), as an admin makes them."""
    admin = s.staff(hub_base, "admin")
    for path, body in (
        (f"/api/facilities/{facility}", {"name": "PHC Jaipur"}),
        (f"/api/facilities/{facility}/departments/opd", {"name": "OPD"}),
        (f"/api/facilities/{facility}/counters/room-1", {"name": "Room 1", "department_id": "opd"}),
        (f"/api/facilities/{facility}/counters/room-2", {"name": "Room 2", "department_id": "opd"}),
        ("/api/departments/opd/queues/med", {"name": "Medicine", "prefix": "MED", "doctor": "Dr. Meena", "remind_ahead": 2}),
        ("/api/departments/opd/queues/ort", {"name": "Orthopaedics", "prefix": "ORT"}),
    ):
        r = s.http.put(path, json=body, headers=admin)
        assert r.status_code == 200, (path, r.text)


def problem(r: httpx.Response, status: int, reason: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["reason"] == reason and body["detail"], body
    return body
