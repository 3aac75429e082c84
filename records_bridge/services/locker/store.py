"""The locker's database: patients, sign-in codes and sessions, records, consent artefacts, share links, the access log.

Every decision that lets data out (a record fetched under a consent, a share
link opened) and every consent change is written to the access log by this
module, in the same place the decision is made, allowed or refused. The log
has no update or delete path here, and the database refuses both (triggers,
migration 0001). Times are milliseconds since the epoch from the caller's
clock, so tests can move time without sleeping.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from records_bridge.services.db import migrate_to_head, write_transaction
from records_bridge.services.locker import consent_machine, otp
from records_bridge.services.locker.coverage import ConsentView, RecordView, check_access
from records_bridge.services.locker.fhir_consent import consent_resource, instant, patient_identifier
from wire.random_secrets import new_secret, secret_hash

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "locker_alembic_version"
SESSION_PREFIX = "lkr_"
LOG_PAGE_MAX = 500

metadata = MetaData()
patients = Table(
    "locker_patients", metadata,
    Column("patient_id", Integer, primary_key=True, autoincrement=True),
    Column("abha", Text), Column("facility", Text), Column("mrn", Text), Column("mobile", Text), Column("name", Text),
    Column("created_ms", BigInteger, nullable=False),
)  # fmt: skip
otps = Table(
    "locker_otps", metadata,
    Column("mobile", Text, primary_key=True), Column("code_hash", Text, nullable=False), Column("expires_ms", BigInteger, nullable=False),
    Column("tries_left", Integer, nullable=False), Column("window_start_ms", BigInteger, nullable=False),
    Column("sends", Integer, nullable=False),
)  # fmt: skip
sessions = Table(
    "locker_sessions", metadata,
    Column("token_hash", Text, primary_key=True), Column("patient_id", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False), Column("expires_ms", BigInteger, nullable=False),
)  # fmt: skip
records = Table(
    "locker_records", metadata,
    Column("record_id", Text, primary_key=True), Column("patient_id", Integer, nullable=False), Column("type", Text, nullable=False),
    Column("date", Text, nullable=False), Column("facility", Text, nullable=False), Column("title", Text, nullable=False),
    Column("bundle", Text), Column("pdf", LargeBinary), Column("digest", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)  # fmt: skip
consents = Table(
    "locker_consents", metadata,
    Column("consent_id", Text, primary_key=True), Column("patient_id", Integer, nullable=False), Column("state", Text, nullable=False),
    Column("requester_kind", Text, nullable=False), Column("requester_id", Text, nullable=False),
    Column("requester_name", Text, nullable=False), Column("requested_by", Text, nullable=False),
    Column("purpose", Text, nullable=False), Column("types", Text, nullable=False), Column("date_from", Text, nullable=False),
    Column("date_to", Text, nullable=False), Column("mode", Text, nullable=False), Column("expires_ms", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False), Column("updated_ms", BigInteger, nullable=False),
    Column("fhir", Text, nullable=False),
)  # fmt: skip
share_links = Table(
    "locker_share_links", metadata,
    Column("link_id", Text, primary_key=True), Column("patient_id", Integer, nullable=False), Column("record_id", Text, nullable=False),
    Column("token", Text, nullable=False), Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False), Column("revoked_ms", BigInteger),
)  # fmt: skip
access_log = Table(
    "locker_access_log", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True), Column("at_ms", BigInteger, nullable=False),
    Column("patient_id", Integer), Column("actor_kind", Text, nullable=False), Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False), Column("record_id", Text), Column("consent_id", Text), Column("link_id", Text),
    Column("outcome", Text, nullable=False), Column("reason", Text, nullable=False),
)  # fmt: skip


def migrate(engine: Engine) -> None:
    """The locker's schema at its newest revision (a no-op when it is there already)."""
    migrate_to_head(engine, MIGRATIONS, VERSION_TABLE)


# ------------------------------------------------------------------------------------------------- errors


class LockerError(Exception):
    """A request the store turns down; ``status`` is the HTTP status the API answers with, ``code`` a short name."""

    status = 400
    code = "invalid"

    def __init__(self, reason: str, *, code: str | None = None, status: int | None = None, retry_after_s: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code or self.code
        self.status = status or self.status
        self.retry_after_s = retry_after_s


class NotFound(LockerError):
    status, code = 404, "not_found"


class Conflict(LockerError):
    status, code = 409, "conflict"


class Forbidden(LockerError):
    status, code = 403, "forbidden"


class RateLimited(LockerError):
    status, code = 429, "rate_limited"


class CodeRejected(LockerError):
    status, code = 401, "code_rejected"


# ------------------------------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class PatientKey:
    """How a patient is named: the ABHA number (14 digits), or an MRN at a facility, or both."""

    abha: str | None = None
    facility: str | None = None
    mrn: str | None = None

    def describe(self) -> str:
        return f"ABHA {self.abha}" if self.abha else f"MRN {self.mrn} at {self.facility}"


@dataclass(frozen=True, slots=True)
class RecordIn:
    type: str
    date: str
    facility: str
    title: str
    bundle: str | None
    pdf: bytes | None
    digest: str


@dataclass(frozen=True, slots=True)
class ConsentIn:
    requester_kind: str
    requester_id: str
    requester_name: str
    requested_by: str
    purpose: str
    types: tuple[str, ...]
    date_from: str
    date_to: str
    mode: str
    expires_ms: int


@dataclass(frozen=True, slots=True)
class LogEntry:
    actor_kind: str
    actor: str
    action: str
    outcome: str
    reason: str
    patient_id: int | None = None
    record_id: str | None = None
    consent_id: str | None = None
    link_id: str | None = None


_RECORD_META = [records.c.record_id, records.c.type, records.c.date, records.c.facility, records.c.title,
                (records.c.bundle.is_not(None)).label("has_bundle"), (records.c.pdf.is_not(None)).label("has_pdf"),
                records.c.created_ms, records.c.patient_id]  # fmt: skip


def _consent_dict(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d["types"] = json.loads(d["types"])
    d["fhir"] = json.loads(d["fhir"])
    return d


class Store:
    def __init__(self, engine: Engine, otp_key: bytes) -> None:
        self.engine = engine
        self._otp_key = otp_key

    # ------------------------------------------------------------------------------------------ patients

    def register_patient(self, key: PatientKey, mobile: str | None, name: str | None, now_ms: int) -> tuple[int, bool]:
        """The patient's id (created if new) and whether it was created; a mobile number is set if the patient had none."""
        for attempt in range(3):
            try:
                with write_transaction(self.engine) as conn:
                    return self._patient_for(conn, key, mobile, name, now_ms)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _patient_for(self, conn: Connection, key: PatientKey, mobile: str | None, name: str | None, now_ms: int) -> tuple[int, bool]:
        found: set[int] = set()
        if key.abha:
            found |= set(conn.execute(select(patients.c.patient_id).where(patients.c.abha == key.abha)).scalars())
        if key.mrn and key.facility:
            found |= set(conn.execute(select(patients.c.patient_id).where(patients.c.facility == key.facility,
                                                                         patients.c.mrn == key.mrn)).scalars())  # fmt: skip
        if len(found) > 1:
            raise Conflict(f"the ABHA number and the MRN name two different patients' lockers ({key.describe()})", code="patient_mismatch")
        if mobile is not None:
            holder = conn.execute(select(patients.c.patient_id).where(patients.c.mobile == mobile)).scalar()
            if holder is not None and holder not in found:
                raise Conflict("this mobile number already opens another patient's locker; one number, one locker", code="mobile_taken")
        if not found:
            pid = conn.execute(insert(patients).values(abha=key.abha, facility=key.facility if key.mrn else None, mrn=key.mrn,
                                                       mobile=mobile, name=name, created_ms=now_ms)
                               .returning(patients.c.patient_id)).scalar_one()  # fmt: skip
            return pid, True
        pid = found.pop()
        row = conn.execute(select(patients).where(patients.c.patient_id == pid).with_for_update()).one()
        fill = {k: v for k, v in (("abha", key.abha), ("mobile", mobile), ("name", name)) if v and not getattr(row, k)}
        if key.mrn and key.facility and not row.mrn:
            fill |= {"facility": key.facility, "mrn": key.mrn}
        if fill:
            conn.execute(update(patients).where(patients.c.patient_id == pid).values(**fill))
        return pid, False

    def find_patient(self, key: PatientKey) -> int | None:
        with self.engine.connect() as conn:
            if key.abha:
                pid = conn.execute(select(patients.c.patient_id).where(patients.c.abha == key.abha)).scalar()
                if pid is not None:
                    return pid
            if key.mrn and key.facility:
                return conn.execute(select(patients.c.patient_id).where(patients.c.facility == key.facility, patients.c.mrn == key.mrn)).scalar()
        return None

    def patient(self, patient_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(patients).where(patients.c.patient_id == patient_id)).one()
        return dict(row._mapping)

    # ------------------------------------------------------------------------------------------- sign-in

    def send_code(self, mobile: str, now_ms: int) -> str | None:
        """A new code for ``mobile`` (to be texted), or None when no locker has this number; ``RateLimited`` when too many
        were sent. Numbers without a locker are rate-limited too, so the answer tells an outsider nothing."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(otps).where(otps.c.mobile == mobile).with_for_update()).first()
            state = None if row is None else otp.OtpState(row.code_hash, row.expires_ms, row.tries_left, row.window_start_ms, row.sends)
            wait = otp.retry_after_ms(state, now_ms)
            if wait:
                secs = -(-wait // 1000)
                raise RateLimited(f"{otp.MAX_SENDS} codes were sent to this number in the last {otp.SEND_WINDOW_MS // 60_000} minutes; "
                                  f"try again in {-(-secs // 60)} minutes", retry_after_s=secs)  # fmt: skip
            known = conn.execute(select(patients.c.patient_id).where(patients.c.mobile == mobile)).scalar() is not None
            code = otp.new_code()
            new = otp.issued(state, otp.code_hash(self._otp_key, mobile, code) if known else "", now_ms)
            self._put_otp(conn, mobile, new, exists=row is not None)
        return code if known else None

    def verify_code(self, mobile: str, code: str, now_ms: int) -> int:
        """The patient the code signs in; ``CodeRejected`` (wrong, expired, used up) otherwise. A right code works once."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(otps).where(otps.c.mobile == mobile).with_for_update()).first()
            state = None if row is None else otp.OtpState(row.code_hash, row.expires_ms, row.tries_left, row.window_start_ms, row.sends)
            result = otp.check(state, otp.code_hash(self._otp_key, mobile, code), now_ms)
            if result.state is not None and result.state != state:
                self._put_otp(conn, mobile, result.state, exists=True)
            pid = conn.execute(select(patients.c.patient_id).where(patients.c.mobile == mobile)).scalar() if result.ok else None
        if not result.ok or pid is None:
            raise CodeRejected(result.reason or "no locker has this number")
        return pid

    def _put_otp(self, conn: Connection, mobile: str, s: otp.OtpState, *, exists: bool) -> None:
        values = {"code_hash": s.code_hash, "expires_ms": s.expires_ms, "tries_left": s.tries_left,
                  "window_start_ms": s.window_start_ms, "sends": s.sends}  # fmt: skip
        if exists:
            conn.execute(update(otps).where(otps.c.mobile == mobile).values(**values))
        else:
            conn.execute(insert(otps).values(mobile=mobile, **values))

    def new_session(self, patient_id: int, now_ms: int, ttl_ms: int) -> str:
        token = new_secret(SESSION_PREFIX)
        with write_transaction(self.engine) as conn:
            conn.execute(insert(sessions).values(token_hash=secret_hash(token), patient_id=patient_id, created_ms=now_ms,
                                                 expires_ms=now_ms + ttl_ms))  # fmt: skip
        return token

    def session_patient(self, token: str, now_ms: int) -> int | None:
        if not token.startswith(SESSION_PREFIX) or len(token) > 100:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(sessions.c.patient_id, sessions.c.expires_ms).where(sessions.c.token_hash == secret_hash(token))).first()
        return row.patient_id if row is not None and now_ms < row.expires_ms else None

    def end_session(self, token: str) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(sessions.delete().where(sessions.c.token_hash == secret_hash(token)))

    # ------------------------------------------------------------------------------------------- records

    def put_record(self, record_id: str, key: PatientKey, mobile: str | None, name: str | None, rec: RecordIn,
                   now_ms: int) -> tuple[bool, int]:  # fmt: skip
        """Store a record once: (created, patient id). The same body again changes nothing; another body is a ``Conflict``."""
        for attempt in range(3):
            try:
                with write_transaction(self.engine) as conn:
                    old = conn.execute(select(records.c.digest, records.c.patient_id).where(records.c.record_id == record_id)).first()
                    if old is not None:
                        if old.digest != rec.digest:
                            raise Conflict(f"record {record_id} is already stored with different content; a record is written "
                                           "once: give a corrected record a new id", code="record_differs")  # fmt: skip
                        return False, old.patient_id
                    pid, _ = self._patient_for(conn, key, mobile, name, now_ms)
                    conn.execute(insert(records).values(record_id=record_id, patient_id=pid, type=rec.type, date=rec.date,
                                                        facility=rec.facility, title=rec.title, bundle=rec.bundle, pdf=rec.pdf,
                                                        digest=rec.digest, created_ms=now_ms))  # fmt: skip
                    return True, pid
            except IntegrityError:  # the same id (or a new patient) written at once by two requests: look again
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def records_of(self, patient_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(*_RECORD_META).where(records.c.patient_id == patient_id)
                                .order_by(records.c.date.desc(), records.c.record_id)).all()  # fmt: skip
        return [dict(r._mapping) for r in rows]

    def record(self, record_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(records).where(records.c.record_id == record_id)).first()
        return None if row is None else dict(row._mapping)

    def record_meta(self, record_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(*_RECORD_META).where(records.c.record_id == record_id)).first()
        return None if row is None else dict(row._mapping)

    def fetch_under_consent(self, record_id: str, consent_id: str, user: str, now_ms: int) -> dict[str, Any]:
        """The record, if ``consent_id`` lets ``user`` read it now; otherwise ``Forbidden`` with the reason. Logged either way."""
        with self.engine.connect() as conn:
            rec = conn.execute(select(records).where(records.c.record_id == record_id)).first()
            c = conn.execute(select(consents).where(consents.c.consent_id == consent_id)).first()
        if rec is None:
            self.log(LogEntry("staff", user, "record.fetch", "refused", "no such record", None, record_id, consent_id), now_ms)
            raise NotFound(f"no record {record_id} in the locker")
        view = None if c is None else ConsentView(c.consent_id, c.patient_id, c.state, tuple(json.loads(c.types)), c.date_from,
                                                  c.date_to, c.expires_ms, c.requester_kind, c.requester_id, c.requested_by)  # fmt: skip
        denial = check_access(view, RecordView(rec.record_id, rec.patient_id, rec.type, rec.date), user, now_ms)
        entry = LogEntry("staff", user, "record.fetch", "refused" if denial else "allowed", denial.reason if denial else
                         f"under consent {consent_id}", rec.patient_id, record_id, consent_id)  # fmt: skip
        self.log(entry, now_ms)
        if denial is not None:
            raise Forbidden(denial.reason, code=denial.code)
        return dict(rec._mapping)

    # ------------------------------------------------------------------------------------------ consents

    def request_consent(self, patient_id: int, c: ConsentIn, now_ms: int) -> dict[str, Any]:
        cid = str(uuid.uuid4())
        row = {"consent_id": cid, "patient_id": patient_id, "state": consent_machine.State.REQUESTED.value,
               "requester_kind": c.requester_kind, "requester_id": c.requester_id, "requester_name": c.requester_name,
               "requested_by": c.requested_by, "purpose": c.purpose, "types": list(c.types), "date_from": c.date_from,
               "date_to": c.date_to, "mode": c.mode, "expires_ms": c.expires_ms, "created_ms": now_ms, "updated_ms": now_ms}  # fmt: skip
        with write_transaction(self.engine) as conn:
            row["fhir"] = consent_resource(row, self._identifier(conn, patient_id), now_ms)
            conn.execute(insert(consents).values(**(row | {"types": json.dumps(row["types"]), "fhir": json.dumps(row["fhir"])})))
            self._log(conn, LogEntry("staff", c.requested_by, "consent.request", "allowed",
                                     f"{c.purpose} for {', '.join(c.types)}", patient_id, consent_id=cid), now_ms)  # fmt: skip
        return row

    def consent(self, consent_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(consents).where(consents.c.consent_id == consent_id)).first()
        return None if row is None else _consent_dict(row)

    def consents_of(self, patient_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(consents).where(consents.c.patient_id == patient_id).order_by(consents.c.created_ms.desc())).all()
        return [_consent_dict(r) for r in rows]

    def act(self, consent_id: str, action: str, role: consent_machine.Role, actor: str, now_ms: int,
            patient_id: int | None = None) -> dict[str, Any]:  # fmt: skip
        """Apply ``action`` as ``role`` (the patient ``patient_id`` must own it); the new artefact, or ``Conflict`` with the table's
        reason. Logged either way. A grant after the artefact's expiry is refused: it is expired first."""
        actor_kind = {"patient": "patient", "clinician": "staff", "system": "system"}[role.value]
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(consents).where(consents.c.consent_id == consent_id).with_for_update()).first()
            if row is None or (patient_id is not None and row.patient_id != patient_id):
                refusal: LockerError = NotFound(f"no consent {consent_id} in this locker")
            else:
                state = row.state
                if role is not consent_machine.Role.SYSTEM and state in ("REQUESTED", "GRANTED") and now_ms >= row.expires_ms:
                    state = self._move(conn, row, consent_machine.State.EXPIRED, now_ms)
                    self._log(conn, LogEntry("system", "expiry", "consent.expire", "allowed", "its expiry passed", row.patient_id,
                                             consent_id=consent_id), now_ms)  # fmt: skip
                outcome = consent_machine.decide(state, action, role)
                if isinstance(outcome, consent_machine.Moved):
                    self._move(conn, row, outcome.state, now_ms)
                    self._log(conn, LogEntry(actor_kind, actor, f"consent.{action}", "allowed", f"now {outcome.state.value}",
                                             row.patient_id, consent_id=consent_id), now_ms)  # fmt: skip
                    new = conn.execute(select(consents).where(consents.c.consent_id == consent_id)).one()
                    return _consent_dict(new)
                refusal = Conflict(outcome.reason, code="consent_state")
        self.log(LogEntry(actor_kind, actor, f"consent.{action}", "refused", refusal.reason,
                          row.patient_id if row is not None and refusal.status != 404 else patient_id, consent_id=consent_id), now_ms)  # fmt: skip
        raise refusal

    def expire_due(self, now_ms: int) -> list[str]:
        """Close every REQUESTED or GRANTED artefact whose expiry has passed (the sweeper); their ids."""
        with write_transaction(self.engine) as conn:
            rows = conn.execute(select(consents).where(consents.c.state.in_(("REQUESTED", "GRANTED")), consents.c.expires_ms <= now_ms)
                                .with_for_update()).all()  # fmt: skip
            for row in rows:
                self._move(conn, row, consent_machine.State.EXPIRED, now_ms)
                self._log(conn, LogEntry("system", "expiry", "consent.expire", "allowed", "its expiry passed", row.patient_id,
                                         consent_id=row.consent_id), now_ms)  # fmt: skip
        return [r.consent_id for r in rows]

    def prune_codes(self, now_ms: int) -> int:
        """Delete sign-in code rows that can no longer matter: the code expired and the number's send window closed (a
        row still counting sends is kept, or deleting it would lift the rate limit). How many were deleted."""
        with write_transaction(self.engine) as conn:
            done = conn.execute(delete(otps).where(otps.c.expires_ms <= now_ms, otps.c.window_start_ms + otp.SEND_WINDOW_MS <= now_ms))
        return done.rowcount or 0

    def _move(self, conn: Connection, row: Any, new: consent_machine.State, now_ms: int) -> str:
        d = dict(row._mapping) | {"state": new.value, "updated_ms": now_ms}
        d["types"] = json.loads(d["types"])
        fhir = consent_resource(d, self._identifier(conn, row.patient_id), now_ms)
        conn.execute(update(consents).where(consents.c.consent_id == row.consent_id)
                     .values(state=new.value, updated_ms=now_ms, fhir=json.dumps(fhir)))  # fmt: skip
        return new.value

    def _identifier(self, conn: Connection, patient_id: int) -> dict[str, str]:
        p = conn.execute(select(patients.c.abha, patients.c.facility, patients.c.mrn).where(patients.c.patient_id == patient_id)).one()
        return patient_identifier(p.abha, p.facility, p.mrn)

    # --------------------------------------------------------------------------------------- share links

    def create_link(self, patient_id: int, record_id: str, expires_ms: int, now_ms: int, make_token: Any) -> dict[str, Any]:
        """A share link to the patient's own record; ``make_token(link_id, expires_s)`` signs it."""
        link_id = secrets.token_urlsafe(16)
        with write_transaction(self.engine) as conn:
            owner = conn.execute(select(records.c.patient_id).where(records.c.record_id == record_id)).scalar()
            if owner != patient_id:
                raise NotFound(f"no record {record_id} in your locker")
            token = make_token(link_id, expires_ms // 1000)
            row = {"link_id": link_id, "patient_id": patient_id, "record_id": record_id, "token": token, "created_ms": now_ms,
                   "expires_ms": (expires_ms // 1000) * 1000, "revoked_ms": None}  # fmt: skip
            conn.execute(insert(share_links).values(**row))
            self._log(conn, LogEntry("patient", "patient", "share.create", "allowed", "a link until " + _minute(row["expires_ms"]),
                                     patient_id, record_id, link_id=link_id), now_ms)  # fmt: skip
        return row

    def links_of(self, patient_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(share_links).where(share_links.c.patient_id == patient_id)
                                .order_by(share_links.c.created_ms.desc())).all()  # fmt: skip
        return [dict(r._mapping) for r in rows]

    def link(self, patient_id: int, link_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(share_links).where(share_links.c.link_id == link_id, share_links.c.patient_id == patient_id)).first()
        if row is None:
            raise NotFound(f"no share link {link_id[:43]} in your locker")
        return dict(row._mapping)

    def revoke_link(self, patient_id: int, link_id: str, now_ms: int) -> dict[str, Any]:
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(share_links).where(share_links.c.link_id == link_id, share_links.c.patient_id == patient_id)
                               .with_for_update()).first()  # fmt: skip
            if row is None:
                raise NotFound(f"no share link {link_id[:43]} in your locker")
            if row.revoked_ms is None:
                conn.execute(update(share_links).where(share_links.c.link_id == link_id).values(revoked_ms=now_ms))
                self._log(conn, LogEntry("patient", "patient", "share.revoke", "allowed", "the link no longer opens the record",
                                         patient_id, row.record_id, link_id=link_id), now_ms)  # fmt: skip
            return dict(row._mapping) | {"revoked_ms": row.revoked_ms or now_ms}

    def open_link(self, link_id: str, now_ms: int, viewer: str) -> dict[str, Any]:
        """The record a (correctly signed) link opens, unless revoked or expired; logged either way."""
        with self.engine.connect() as conn:
            link = conn.execute(select(share_links).where(share_links.c.link_id == link_id)).first()
            rec = None if link is None else conn.execute(select(records).where(records.c.record_id == link.record_id)).first()
        reason = ("this share link is not known here" if link is None or rec is None else
                  "the patient revoked this share link" if link.revoked_ms is not None else
                  "this share link has expired; ask the patient for a new one" if now_ms >= link.expires_ms else "")  # fmt: skip
        self.log(LogEntry("share-link", viewer, "share.view", "refused" if reason else "allowed", reason or "the link was opened",
                          None if link is None else link.patient_id, None if link is None else link.record_id, link_id=link_id), now_ms)  # fmt: skip
        if reason:
            raise (NotFound if link is None else Forbidden)(reason, code="link_refused")
        return dict(rec._mapping)  # type: ignore[union-attr]

    # ----------------------------------------------------------------------------------------- access log

    def log(self, entry: LogEntry, now_ms: int) -> None:
        """Append one entry (its own transaction)."""
        with write_transaction(self.engine) as conn:
            self._log(conn, entry, now_ms)

    def _log(self, conn: Connection, e: LogEntry, now_ms: int) -> None:
        conn.execute(insert(access_log).values(at_ms=now_ms, patient_id=e.patient_id, actor_kind=e.actor_kind, actor=e.actor[:200],
                                               action=e.action, record_id=e.record_id, consent_id=e.consent_id, link_id=e.link_id,
                                               outcome=e.outcome, reason=e.reason[:500]))  # fmt: skip

    def access_log_of(self, patient_id: int, limit: int = 200, before: int | None = None) -> list[dict[str, Any]]:
        """The patient's entries, newest first (``before``: a ``seq`` to page back from)."""
        q = select(access_log).where(access_log.c.patient_id == patient_id)
        if before is not None:
            q = q.where(access_log.c.seq < before)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(access_log.c.seq.desc()).limit(min(max(limit, 1), LOG_PAGE_MAX))).all()
        return [dict(r._mapping) for r in rows]


def _minute(ms: int) -> str:
    return instant(ms)[:16].replace("T", " ") + " UTC"


__all__ = ["Conflict", "ConsentIn", "Forbidden", "LockerError", "LogEntry", "NotFound", "PatientKey", "RateLimited", "RecordIn",
           "Store", "CodeRejected", "migrate"]


def current_revision_of(engine: Engine) -> str | None:
    """The locker's schema revision in this database (None before the first migration)."""
    from records_bridge.services.db import current_revision

    return current_revision(engine, VERSION_TABLE)
