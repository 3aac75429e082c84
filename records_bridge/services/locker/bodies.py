"""The locker's request bodies: JSON of bounded size read from the stream, then checked by pydantic models.

Every text has a length limit, every list a count limit; the ABHA number is
checked by ``wire.abha`` and mobile numbers by the SMS gateway's
``normalise_mobile``. A record's PDF arrives in base64 and is limited after
decoding too; its FHIR Bundle must be a ``document`` Bundle that fhir.resources
accepts.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from records_bridge.services.locker.fhir_consent import MODES, PURPOSES
from records_bridge.services.locker.problems import describe_errors
from records_bridge.services.locker.store import LockerError, PatientKey
from records_bridge.services.sms import SmsError, normalise_mobile
from wire.abha import AbhaError, abha_number

SMALL_BODY = 16 * 1024
RECORD_BODY = 12 * 1024 * 1024  # a PDF of up to MAX_PDF in base64, and a Bundle
MAX_PDF = 8 * 1024 * 1024
MAX_BUNDLE_TEXT = 4 * 1024 * 1024
RECORD_TYPES = ("DischargeSummary", "OPConsultation", "Prescription", "DiagnosticReport", "OPDToken",
                "ImmunizationRecord", "HealthDocumentRecord", "WellnessRecord")  # fmt: skip
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
Text200 = Annotated[str, Field(min_length=1, max_length=200)]
Ident = Annotated[str, Field(pattern=ID_PATTERN)]


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON: ``application/json``, at most ``limit`` bytes (413 beyond, 415 for another type, 400 if not JSON)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise LockerError(f"send JSON (Content-Type: application/json), not {media[:60] or 'no Content-Type'!r}", code="media",
                          status=415)  # fmt: skip
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise LockerError(f"the body ({declared} bytes) is larger than the limit of {limit} bytes", code="too_large", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise LockerError(f"the body is larger than the limit of {limit} bytes", code="too_large", status=413)
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError) as exc:
        raise LockerError(f"the body is not JSON: {str(exc)[:200]}", code="not_json") from None


M = TypeVar("M", bound=BaseModel)


def parsed(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise LockerError(describe_errors(exc.errors(include_url=False)), code="invalid") from None


def iso_date(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat() if len(text) == 10 else _bad_date(text)
    except ValueError:
        return _bad_date(text)


def _bad_date(text: str) -> str:
    raise ValueError(f"a date is written YYYY-MM-DD, not {text[:20]!r}")


def mobile_number(text: str) -> str:
    try:
        return normalise_mobile(text)
    except SmsError as exc:
        raise ValueError(str(exc)) from None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PatientRef(Strict):
    abha: Annotated[str | None, Field(max_length=64)] = None
    facility: Annotated[Ident | None, Field(description="the facility's id, with mrn")] = None
    mrn: Annotated[str | None, Field(min_length=1, max_length=64)] = None

    @field_validator("abha")
    @classmethod
    def _abha(cls, v: str | None) -> str | None:
        if v is None:
            return None
        try:
            return abha_number(v)
        except AbhaError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _key(self) -> PatientRef:
        if not self.abha and not (self.facility and self.mrn):
            raise ValueError("name the patient by abha (the 14-digit ABHA number) or by facility and mrn")
        if bool(self.facility) != bool(self.mrn):
            raise ValueError("facility and mrn go together")
        return self

    def key(self) -> PatientKey:
        return PatientKey(self.abha, self.facility, self.mrn)


class PatientIn(Strict):
    patient: PatientRef
    mobile: Annotated[str, Field(max_length=20)]
    name: Text200 | None = None

    _mobile = field_validator("mobile")(classmethod(lambda cls, v: mobile_number(v)))


class RecordPut(Strict):
    patient: PatientRef
    mobile: Annotated[str | None, Field(max_length=20)] = None
    name: Text200 | None = None
    type: Literal[RECORD_TYPES]  # type: ignore[valid-type]
    date: Annotated[str, Field(max_length=10)]
    facility: Text200
    title: Text200 | None = None
    bundle: dict[str, Any] | None = None
    pdf: Annotated[str | None, Field(max_length=RECORD_BODY)] = None  # the decoded size is checked against MAX_PDF

    _date = field_validator("date")(classmethod(lambda cls, v: iso_date(v)))
    _mobile = field_validator("mobile")(classmethod(lambda cls, v: None if v is None else mobile_number(v)))

    @model_validator(mode="after")
    def _content(self) -> RecordPut:
        if self.bundle is None and self.pdf is None:
            raise ValueError("a record carries a FHIR document Bundle (bundle), a PDF (pdf, base64), or both")
        if self.bundle is not None and (self.bundle.get("resourceType") != "Bundle" or self.bundle.get("type") != "document"):
            raise ValueError('bundle must be a FHIR Bundle of type "document"')
        return self

    def pdf_bytes(self) -> bytes | None:
        if self.pdf is None:
            return None
        try:
            data = base64.b64decode(self.pdf, validate=True)
        except (binascii.Error, ValueError):
            raise LockerError("pdf is not base64", code="invalid") from None
        if len(data) > MAX_PDF:
            raise LockerError(f"the PDF is {len(data)} bytes; the limit is {MAX_PDF}", code="too_large", status=413)
        if not data.startswith(b"%PDF-"):
            raise LockerError("pdf is not a PDF file (it does not start with %PDF-)", code="invalid")
        return data


def digest_of(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


class RequesterIn(Strict):
    kind: Literal["staff", "facility"] = "staff"
    id: Ident | None = None
    name: Text200 | None = None

    @model_validator(mode="after")
    def _facility(self) -> RequesterIn:
        if self.kind == "facility" and not self.id:
            raise ValueError("a facility requester needs its id")
        return self


class ConsentRequest(Strict):
    patient: PatientRef
    purpose: Literal[tuple(PURPOSES)]  # type: ignore[valid-type]
    types: Annotated[list[Literal[RECORD_TYPES]], Field(min_length=1, max_length=len(RECORD_TYPES))]  # type: ignore[valid-type]
    date_from: Annotated[str, Field(max_length=10)]
    date_to: Annotated[str, Field(max_length=10)]
    mode: Literal[MODES] = "VIEW"  # type: ignore[valid-type]
    expires_at: Annotated[dt.datetime, Field(description="when the access ends (ISO 8601 with a time zone)")]
    requester: RequesterIn = RequesterIn()

    _dates = field_validator("date_from", "date_to")(classmethod(lambda cls, v: iso_date(v)))

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, v: dt.datetime) -> dt.datetime:
        if v.tzinfo is None:
            raise ValueError("expires_at needs a time zone (e.g. 2024-06-01T00:00:00Z or +05:30)")
        return v

    @model_validator(mode="after")
    def _range(self) -> ConsentRequest:
        if self.date_from > self.date_to:
            raise ValueError("date_from is after date_to")
        return self


class CodeRequest(Strict):
    mobile: Annotated[str, Field(max_length=20)]
    _mobile = field_validator("mobile")(classmethod(lambda cls, v: mobile_number(v)))


class SignIn(CodeRequest):
    code: Annotated[str, Field(pattern=r"^[0-9]{6}$")]


class ShareRequest(Strict):
    record_id: Ident
    minutes: Annotated[int, Field(ge=5, le=7 * 24 * 60)] = 60
