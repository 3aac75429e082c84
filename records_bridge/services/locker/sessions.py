"""Who is asking: a patient (a locker session, from the cookie for the page or a bearer token for the API) or a staff
member (the hub's bearer token, checked by ``hub_identity``). Session tokens are stored hashed and expire."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from records_bridge.services.hub_identity import Staff
from records_bridge.services.locker.store import SESSION_PREFIX, LockerError, Store

COOKIE = "locker_session"
SESSION_TTL_MS = 30 * 60_000
CLINICIANS = ("intensivist", "teleicu_nurse", "ward_nurse")
REGISTRARS = ("intensivist", "teleicu_nurse", "ward_nurse", "admin", "records")


@dataclass(frozen=True, slots=True)
class PatientSession:
    patient_id: int
    token: str


def session_token(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip().startswith(SESSION_PREFIX):
        return auth[7:].strip()
    return request.cookies.get(COOKIE, "")


async def patient(request: Request) -> PatientSession:
    """The signed-in patient (401 otherwise)."""
    token = session_token(request)
    if not token:
        raise LockerError("sign in to your locker with your mobile number and the code sent to it", code="signed_out", status=401)
    store: Store = request.app.state.store
    pid = await run_in_threadpool(store.session_patient, token, request.app.state.clock())
    if pid is None:
        raise LockerError("your locker session has ended: sign in again", code="signed_out", status=401)
    return PatientSession(pid, token)


def staff(*roles: str):  # type: ignore[no-untyped-def]
    """A dependency: the staff member signed in to the hub, if their role is one of ``roles``."""

    async def dependency(request: Request) -> Staff:
        who: Staff = await request.app.state.identity.dependency(*roles)(request)
        return who

    return dependency
