"""The EHR's checks of a request, in the order it makes them: bearer secret (401), a reader writing (403), a type
that is not a FHIR resource (404), content type (415), body size (413), JSON (400), type or id differing from the
URL (422), FHIR validity (400). Each failure is a ``FhirError``, answered as an OperationOutcome."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from fastapi import Request
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource as FhirResource
from starlette.concurrency import run_in_threadpool

from records_bridge.fhir.contract import MappingError
from records_bridge.fhir.validation import validated
from records_bridge.services.ehr.clients import Client, authenticate
from records_bridge.services.ehr.outcomes import FhirError

FHIR_JSON = "application/fhir+json"
ACCEPTED_MEDIA = ("application/fhir+json", "application/json")
MAX_BODY = 8 * 1024 * 1024  # a discharge Bundle carries its PDF in base64


@lru_cache(maxsize=256)
def is_resource_type(kind: str) -> bool:
    """Whether ``kind`` names a FHIR resource (not a datatype, not anything else)."""
    if not kind[:1].isupper() or not kind.isalpha():
        return False
    try:
        model = get_fhir_model_class(kind)
    except (ValueError, KeyError):
        return False
    concrete = model is not FhirResource and getattr(model, "__name__", "") == kind and kind != "DomainResource"
    return isinstance(model, type) and issubclass(model, FhirResource) and concrete


async def client_of(request: Request, *, write: bool) -> Client:
    """The API client the bearer secret names; 401 without a valid one, 403 for a reader that writes."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise FhirError(401, "a bearer secret is required (Authorization: Bearer <secret>)", headers={"WWW-Authenticate": "Bearer"})
    client = await run_in_threadpool(authenticate, request.app.state.engine, token.strip())
    if client is None:
        raise FhirError(401, "the bearer secret is not valid", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if write and not client.may_write:
        raise FhirError(403, f"client {client.name!r} is a reader: it may not write")
    return client


def check_type(kind: str) -> None:
    if not is_resource_type(kind):
        raise FhirError(404, f"unknown resource type {kind[:64]!r}")


def check_id(ident: str) -> None:
    if not (1 <= len(ident) <= 64 and all(c.isascii() and (c.isalnum() or c in "-.") for c in ident)):
        raise FhirError(400, f"not a FHIR id: {ident[:80]!r}")


async def body_of(request: Request, kind: str) -> dict[str, Any]:
    """The request's resource: FHIR JSON of type ``kind``, at most ``app.state.max_body`` bytes."""
    max_body: int = request.app.state.max_body
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ACCEPTED_MEDIA:
        raise FhirError(415, f"send {FHIR_JSON}, not {media or 'no Content-Type'!r}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body:
        raise FhirError(413, f"the body ({declared} bytes) is larger than the limit of {max_body} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise FhirError(413, f"the body is larger than the limit of {max_body} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise FhirError(400, f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise FhirError(400, "the body must be a JSON object (a FHIR resource)")
    if b"\\u0000" in raw and _has_nul(data, depth=0):  # FHIR forbids it, and PostgreSQL's text (the search index) cannot hold it
        raise FhirError(400, "the resource contains a NUL character (\\u0000), which FHIR strings may not")
    body_type = data.get("resourceType")
    if not isinstance(body_type, str) or not body_type:
        raise FhirError(400, "the resource has no resourceType")
    if body_type != kind:
        raise FhirError(422, f"the resource is a {body_type[:64]!r}, the URL names {kind!r}")
    return data


async def valid(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource validated with fhir.resources (the bridge's own check); 400 naming the problem."""
    try:
        return await run_in_threadpool(validated, resource)
    except MappingError as exc:
        raise FhirError(400, str(exc)) from None
    except RecursionError:
        raise FhirError(400, "the resource is nested too deeply") from None


def _has_nul(value: Any, depth: int) -> bool:
    if depth > 200:
        raise FhirError(400, "the resource is nested too deeply")
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k, depth + 1) or _has_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v, depth + 1) for v in value)
    return False
