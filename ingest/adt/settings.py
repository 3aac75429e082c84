"""The schema of the hub's ADT receiver settings (an ``adt:`` section for the hub's configuration).

``AdtSettings`` is checked like every teleicu configuration model (unknown keys
refused, each problem named); ``AdtListener.from_settings`` builds the listener
from it. Example::

    adt:
      host: 0.0.0.0
      port: 2575                     # the HIS's ADT outbound interface connects here
      facility: SMS-JAIPUR-ICU       # our MSH-4 in the ACKs
      timezone: Asia/Kolkata         # for HL7 times sent without an offset
      beds:                          # PV1-3 point of care^room^bed as the HIS sends it -> our bed id
        "MICU^^01": ICU1-01
        "MICU^^02": ICU1-02
      dispositions:                  # the site's own PV1-36 codes, besides HL7 table 0112's
        DAMA: left_against_advice
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from ingest.adt.parser import DEFAULT_FACILITY, MAX_MAX_MESSAGE, MAX_MESSAGE, MIN_MAX_MESSAGE
from wire.config import ConfigModel
from wire.hl7v2 import parse_timezone
from wire.outbox_events import Outcome

DEFAULT_PORT = 2575  # the port IANA registered for HL7 over MLLP
MAX_CONNECTIONS = 4
IDLE_TIMEOUT_S = 300.0
REMEMBERED = 4096


def _timezone(spec: str) -> str:
    parse_timezone(spec)  # raises ValueError naming the problem
    return spec


def _beds(beds: dict[str, str]) -> dict[str, str]:
    if not beds:
        raise ValueError("beds must map at least one PV1-3 location to a bed id")
    empty = [k for k, v in beds.items() if not k or not v]
    if empty:
        raise ValueError(f"beds: locations and bed ids must not be empty ({empty!r})")
    return beds


class AdtSettings(ConfigModel):
    """Where the ADT listener listens and how it reads the HIS's messages."""

    host: Annotated[str, Field(min_length=1)] = "0.0.0.0"
    port: Annotated[int, Field(ge=0, le=65535)] = DEFAULT_PORT
    beds: Annotated[dict[str, str], AfterValidator(_beds)]
    facility: Annotated[str, Field(min_length=1, max_length=60)] = DEFAULT_FACILITY
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"
    max_message: Annotated[int, Field(ge=MIN_MAX_MESSAGE, le=MAX_MAX_MESSAGE)] = MAX_MESSAGE
    dispositions: dict[Annotated[str, Field(min_length=1)], Outcome] = {}
    max_connections: Annotated[int, Field(ge=1)] = MAX_CONNECTIONS
    idle_timeout_s: Annotated[float, Field(gt=0)] = IDLE_TIMEOUT_S
    remembered: Annotated[int, Field(ge=0)] = REMEMBERED  # accepted messages remembered, to answer a re-send
