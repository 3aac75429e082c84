"""The EHR as a sink: each outbox event mapped to FHIR R4 writes (``records_bridge.fhir``) and sent in order.

The writes are idempotent by construction (``PUT`` to a client-assigned id, or a
conditional create on an identifier), so sending an event again (after a kill,
a timeout whose answer was lost) changes nothing. Answers are sorted into:
success (200, 201); ``Poison`` only when the EHR refuses the resource itself
(400, 409, 412, 413, 422, with the OperationOutcome's diagnostics) or the event
cannot be mapped; and ``Retry`` for everything else: no connection, 5xx, 408,
429, but also 401/403 (a wrong or revoked secret), 404, 405, 415 and
redirects, which mean a wrong URL or a proxy in the way, and a missing PDF
font. Parking those would move every event past the EHR for a fault of the
set-up; waiting keeps them, and the bridge's ``failing`` metric says so.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

import httpx

from records_bridge.bridge.outcomes import Poison, Retry
from records_bridge.fhir import FhirWrite, FontMissing, MappingContext, MappingError, writes_for
from wire.outbox_events import Event

log = logging.getLogger(__name__)

REFUSED = frozenset({400, 409, 412, 413, 422})  # the EHR refuses this resource: it will refuse it again


class FhirSink:
    def __init__(self, base: str, secret: str, ctx: MappingContext, *, name: str = "ehr", verify: ssl.SSLContext | bool = True, timeout_s: float = 30) -> None:
        self.name = name
        self.base = base.rstrip("/")
        self.ctx = ctx
        self._auth = {"Authorization": f"Bearer {secret}"}
        self.http = httpx.AsyncClient(timeout=timeout_s, verify=verify)
        self.writes = 0

    async def close(self) -> None:
        await self.http.aclose()

    async def ready(self) -> None:
        """Check that ``base`` is a FHIR server (its CapabilityStatement at ``/metadata``); ``Retry`` if not."""
        try:
            r = await self.http.get(f"{self.base}/metadata", headers={"Accept": "application/fhir+json"})
            kind = r.json().get("resourceType") if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise Retry(f"no FHIR server at {self.base}: {exc!r}") from exc
        if kind != "CapabilityStatement":
            raise Retry(f"{self.base}/metadata answered {r.status_code} without a CapabilityStatement: is ehr.url the FHIR base?")

    async def handle(self, event: Event) -> None:
        try:
            writes = writes_for(event, self.ctx)
        except FontMissing as exc:  # this machine lacks the PDF's font: the event is fine, the summary waits for it
            raise Retry(str(exc)) from exc
        except MappingError as exc:
            raise Poison(f"cannot map {event.data.type} to FHIR: {exc}") from exc
        except Exception as exc:  # a defect in the mapping: this event would stop every record behind it, on every restart
            log.exception("mapping event %d (%s) failed", event.id, event.data.type)
            raise Poison(f"mapping {event.data.type} failed: {exc!r}") from exc
        for w in writes:
            await self._send(w)

    async def _send(self, w: FhirWrite) -> None:
        headers = {**self._auth, "Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
        if w.if_none_exist:
            headers["If-None-Exist"] = w.if_none_exist
        try:
            r = await self.http.request(w.method, f"{self.base}/{w.path}", json=w.resource, headers=headers)
        except httpx.HTTPError as exc:
            raise Retry(f"EHR unreachable: {exc!r}") from exc
        if r.status_code in (200, 201):
            self.writes += 1
            return
        detail = _diagnostics(r)
        if r.status_code in REFUSED:
            raise Poison(f"EHR refused {w.method} {w.path} ({r.status_code}): {detail}")
        raise Retry(f"EHR answered {r.status_code} to {w.method} {w.path}: {detail}")


def _diagnostics(r: httpx.Response) -> str:
    try:
        body: Any = r.json()
    except ValueError:
        return r.text[:300]
    issues = body.get("issue", []) if isinstance(body, dict) else []
    if not isinstance(issues, list):
        issues = []
    said = [str(i.get("diagnostics") or i.get("code")) if isinstance(i, dict) else str(i) for i in issues]
    return "; ".join(said)[:500] or r.text[:300]
