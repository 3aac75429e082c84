"""The locker on a real socket for tests: ``create_app`` under uvicorn in a thread (so the test's clock is the app's),
its SMS log gateway, a record body as the records bridge would send it, and reading the texted code back."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from support import serving, wait_until

from records_bridge.services.locker.app import create_app
from records_bridge.services.sms import LogGateway

SECRET = b"0123456789abcdef0123456789abcdef-test"
ABHA = "91-1234-5678-9012"
MOBILE = "+919829012345"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@dataclass
class Locker:
    base: str
    sms: LogGateway
    app: Any

    def codes_sent(self, mobile: str = MOBILE) -> list[str]:
        return [m.group(1) for msg in self.sms.sent() if msg["to"] == mobile and (m := re.search(r"code is ([0-9]{6})", msg["text"]))]

    def sign_in(self, http: httpx.Client, mobile: str = MOBILE) -> str:
        """Ask for a code, read it from the SMS log, sign in; the session token (the client keeps the cookie too)."""
        before = len(self.codes_sent(mobile))
        r = http.post(f"{self.base}/api/patient/code", json={"mobile": mobile})
        assert r.status_code == 202, r.text
        code = wait_until(lambda: len(self.codes_sent(mobile)) > before and self.codes_sent(mobile)[-1], "the code in the SMS log")
        r = http.post(f"{self.base}/api/patient/session", json={"mobile": mobile, "code": code})
        assert r.status_code == 200, r.text
        return r.json()["token"]


@contextmanager
def running_locker(db_url: str, hub_base: str, tmp_path: Path, clock: Callable[[], int], sweep_s: float = 30.0) -> Iterator[Locker]:
    sms = LogGateway(tmp_path / "sms.jsonl")
    app = create_app(db_url, hub_url=hub_base, sms=sms, share_secret=SECRET, clock=clock, sweep_s=sweep_s)
    try:
        with serving(app, "locker") as base:
            yield Locker(base, sms, app)
    finally:
        app.state.engine.dispose()


def document_bundle(record_id: str = "enc-1") -> dict[str, Any]:
    return {
        "resourceType": "Bundle", "id": record_id, "type": "document", "timestamp": "2024-04-20T10:00:00+05:30",
        "identifier": {"system": "urn:teleicu:fhir:document", "value": record_id},
        "entry": [{"fullUrl": f"urn:uuid:7f0f6f3e-0000-4000-8000-{abs(hash(record_id)) % 10**12:012d}", "resource": {
            "resourceType": "Composition", "status": "final", "date": "2024-04-20T10:00:00+05:30", "title": "Discharge summary",
            "type": {"coding": [{"system": "http://snomed.info/sct", "code": "373942005", "display": "Discharge summary"}]},
            "author": [{"display": "SMS Hospital ICU"}]}}],
    }  # fmt: skip


def record_body(record_id: str = "enc-1", *, type_: str = "DischargeSummary", date: str = "2024-04-20", mobile: str | None = MOBILE,
                pdf: bytes | None = PDF, bundle: bool = True) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {"patient": {"abha": ABHA, "facility": "RJ-JAI-SMS", "mrn": "MRN-0042"}, "name": "Asha Devi",
                            "type": type_, "date": date, "facility": "SMS Hospital, Jaipur", "title": f"{type_} {date}"}  # fmt: skip
    if mobile:
        body["mobile"] = mobile
    if pdf is not None:
        body["pdf"] = base64.b64encode(pdf).decode()
    if bundle:
        body["bundle"] = document_bundle(record_id)
    return body


def dumps(body: Any) -> str:
    return json.dumps(body)
