"""The consent artefact's state machine, as a table: (state, action, role) -> the new state, or a refusal and its reason.

Pure: no clock, no database. A clinician *requests* an artefact (it starts
REQUESTED); only the patient grants, denies or revokes it; only the system (the
expiry sweeper) expires it. DENIED, REVOKED and EXPIRED are final: a clinician
who still needs the records asks again. Every (state, action, role) triple has
an entry in ``TABLE``, so nothing is decided by a fall-through.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from itertools import product


class State(StrEnum):
    REQUESTED = "REQUESTED"
    GRANTED = "GRANTED"
    DENIED = "DENIED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


class Action(StrEnum):
    GRANT = "grant"
    DENY = "deny"
    REVOKE = "revoke"
    EXPIRE = "expire"


class Role(StrEnum):
    PATIENT = "patient"
    CLINICIAN = "clinician"  # the requester, or any other staff member
    SYSTEM = "system"  # the expiry sweeper


FINAL = frozenset({State.DENIED, State.REVOKED, State.EXPIRED})


@dataclass(frozen=True, slots=True)
class Moved:
    state: State


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


Outcome = Moved | Refused

_ALLOWED: dict[tuple[State, Action, Role], State] = {
    (State.REQUESTED, Action.GRANT, Role.PATIENT): State.GRANTED,
    (State.REQUESTED, Action.DENY, Role.PATIENT): State.DENIED,
    (State.REQUESTED, Action.EXPIRE, Role.SYSTEM): State.EXPIRED,
    (State.GRANTED, Action.REVOKE, Role.PATIENT): State.REVOKED,
    (State.GRANTED, Action.EXPIRE, Role.SYSTEM): State.EXPIRED,
}


def _refusal(state: State, action: Action, role: Role) -> Refused:
    """Why ``role`` may not ``action`` an artefact in ``state`` (the triple is not in ``_ALLOWED``)."""
    if state in FINAL:
        return Refused(f"the consent is already {state.value.lower()}; a new request is needed")
    if role is Role.CLINICIAN:
        return Refused(f"only the patient may {action.value} a consent; a clinician may only request one")
    if action is Action.EXPIRE:
        return Refused("a consent expires by its date (the locker closes it); it cannot be expired by hand")
    if role is Role.SYSTEM:
        return Refused(f"only the patient may {action.value} a consent")
    if state is State.GRANTED:
        return Refused("the consent is already granted" if action is Action.GRANT else
                       "the consent is already granted; revoke it to withdraw access")  # fmt: skip
    return Refused("the consent has not been granted, so there is nothing to revoke; deny the request instead")


TABLE: dict[tuple[State, Action, Role], Outcome] = {
    key: Moved(_ALLOWED[key]) if key in _ALLOWED else _refusal(*key) for key in product(State, Action, Role)
}


def decide(state: State | str, action: Action | str, role: Role | str) -> Outcome:
    """What happens when ``role`` does ``action`` to an artefact in ``state``; ``ValueError`` for a name not in the enums."""
    return TABLE[(State(state), Action(action), Role(role))]
