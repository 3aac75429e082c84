"""The EHR as a sink: each outbox event mapped to FHIR R4 writes (``records_bridge.fhir``) and sent in order.

The writes are idempotent by construction (``PUT`` to a client-assigned id, or a
conditional create on an identifier), so sending an event again (after a kill,
a timeout whose answer was lost) changes nothing. Answers are sorted into:
success (200, 201); ``Retry`` for what may pass later (no connection, 408, 429,
5xx, and 401/403, which mean the bridge's secret is wrong or revoked: parking
every event would only move the loss; and a missing PDF font on this machine);
``Poison`` for a write the EHR refuses
as it is (any other 4xx, with the OperationOutcome's diagnostics), and for an
event that cannot be mapped.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from records_bridge.bridge.outcomes import Poison, Retry
from records_bridge.fhir import FhirWrite, FontMissing, MappingContext, MappingError, writes_for
from wire.outbox_events import Event

RETRYABLE = frozenset({401, 403, 408, 425, 429})


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

    async def handle(self, event: Event) -> None:
        try:
            writes = writes_for(event, self.ctx)
        except FontMissing as exc:  # this machine lacks the PDF's font: the event is fine, the summary waits for it
            raise Retry(str(exc)) from exc
        except MappingError as exc:
            raise Poison(f"cannot map {event.data.type} to FHIR: {exc}") from exc
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
        if r.status_code in RETRYABLE or r.status_code >= 500:
            raise Retry(f"EHR answered {r.status_code} to {w.method} {w.path}: {detail}")
        raise Poison(f"EHR refused {w.method} {w.path} ({r.status_code}): {detail}")


def _diagnostics(r: httpx.Response) -> str:
    try:
        body: Any = r.json()
    except ValueError:
        return r.text[:300]
    issues = body.get("issue", []) if isinstance(body, dict) else []
    return "; ".join(str(i.get("diagnostics") or i.get("code")) for i in issues)[:500] or r.text[:300]
