"""What the hub accepts as a patient's details and an encounter's end: checked here, once, for the API and HL7 ADT.

``PatientDetails`` is a request's (or an ADT message's) description of a
patient; an ABHA number is checked by ``wire.abha`` and stored as 14 digits. A refusal raises ``PatientError`` (a ``ValueError``) with a message a
clerk can act on.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from wire.abha import AbhaError, abha_number
from wire.outbox_events import Outcome, Patient, Sex

OUTCOMES: tuple[str, ...] = get_args(Outcome)
_MRN = re.compile(r"[A-Za-z0-9][A-Za-z0-9/_.:-]{0,63}")


class PatientError(ValueError):
    pass


def check_abha(text: str) -> str:
    """The ABHA number as 14 digits (``wire.abha``); raises ``PatientError`` for anything else."""
    try:
        return abha_number(text)
    except AbhaError as exc:
        raise PatientError(f"ABHA number: {exc}") from None


def check_mrn(text: str) -> str:
    if not _MRN.fullmatch(text):
        raise PatientError(f"MRN {text!r}: 1 to 64 letters, digits and / _ . : - (starting with a letter or digit)")
    return text


def check_birth_date(text: str | None) -> str | None:
    if text is None or text == "":
        return None
    try:
        born = dt.date.fromisoformat(text)
    except ValueError:
        raise PatientError(f"birth date {text!r}: YYYY-MM-DD") from None
    if born > dt.datetime.now(dt.UTC).date() or born.year < 1880:
        raise PatientError(f"birth date {text}: not a possible birth date")
    return born.isoformat()


def _abha_or_none(text: str | None) -> str | None:
    return None if text in (None, "") else check_abha(text)  # type: ignore[arg-type]


class PatientDetails(BaseModel):
    """A patient as a request or an ADT message describes them (the hub assigns ``patient_id``)."""

    model_config = ConfigDict(extra="forbid")

    mrn: Annotated[str, AfterValidator(check_mrn)]
    abha: Annotated[str | None, AfterValidator(_abha_or_none)] = None
    name: Annotated[str, Field(min_length=1, max_length=200)]
    sex: Sex = "unknown"
    birth_date: Annotated[str | None, AfterValidator(check_birth_date)] = None
    diagnosis: Annotated[str, Field(max_length=500)] = ""
    attending: Annotated[str, Field(max_length=200)] = ""

    def as_patient(self, patient_id: str) -> Patient:
        return Patient(patient_id=patient_id, **self.model_dump())
