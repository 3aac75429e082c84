"""The HL7 v2 tables the ADT parser maps to teleicu's words: 0001 (sex) and 0112 (discharge disposition).

Table 0001, administrative sex (PID-8): ``F`` female, ``M`` male, ``O`` other,
``A`` ambiguous (read as other), ``U`` unknown and ``N`` not applicable (read
as unknown). An empty PID-8 is unknown; any other value is unknown too, with a
warning in the ACK.

Table 0112, discharge disposition (PV1-36), is user-defined: HL7 suggests the
US billing codes and a site may use its own. teleicu maps only those whose
meaning is the same in every edition we know:

=========================  ========================================================
outcome                    codes
=========================  ========================================================
``discharged``             01 home or self care, 06 home under a home health service,
                           08 home under a home IV provider; and an empty PV1-36
``transferred_out``        02 another short-term general hospital, 03 skilled nursing
                           facility, 04 intermediate care facility, 05 another type of
                           institution
``left_against_advice``    07 left against medical advice or discontinued care
``died``                   20 expired, 40 expired at home, 41 expired in a medical
                           facility, 42 expired, place unknown
=========================  ========================================================

Codes 21-29 are not mapped: older HL7 editions reserve them for deaths defined
by a state, the current billing code 21 means discharged to court or law
enforcement. 09 (admitted as an inpatient to this hospital) and 30 (still a
patient) are not mapped either: a move within the hospital is an A02. A code
not in the table is refused (AE) rather than guessed; a site adds its own
codes (for example ``DAMA: left_against_advice``, ``LAMA: left_against_advice``)
with the ``dispositions`` setting.
"""

from __future__ import annotations

from typing import get_args

from wire.outbox_events import Outcome, Sex

OUTCOMES: tuple[str, ...] = get_args(Outcome)

SEX_0001: dict[str, Sex] = {"F": "female", "M": "male", "O": "other", "A": "other", "U": "unknown", "N": "unknown"}

DISPOSITION_0112: dict[str, Outcome] = {
    "01": "discharged",
    "06": "discharged",
    "08": "discharged",
    "02": "transferred_out",
    "03": "transferred_out",
    "04": "transferred_out",
    "05": "transferred_out",
    "07": "left_against_advice",
    "20": "died",
    "40": "died",
    "41": "died",
    "42": "died",
}
