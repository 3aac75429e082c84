"""The queue's database: the structure (facilities, departments, counters, queues), tokens, calls, credentials.

Every change runs in one write transaction (``db.write_transaction``: the
write lock up front on SQLite). A token's number comes from the queue-day's
counter row (``queue_day_numbers``), locked with ``SELECT … FOR UPDATE`` on
PostgreSQL before anything else is read, then advanced with ``UPDATE …
RETURNING``: numbers are gapless (a transaction that gives up rolls its
increment back with it) and unique (``UNIQUE(queue_id, day, number)`` as well).
The duplicate check (one active token per patient, queue and day; one token
per booking id) runs under that same lock, and a partial unique index refuses
a duplicate the check might miss; a transaction that hits it is run again and
then finds the existing token.

Times are milliseconds from the clock the application injects; the day is the
facility's (``rules.service_day``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    and_,
    case,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from records_bridge.services.db import migrate_to_head, write_transaction
from records_bridge.services.queue import rules
from records_bridge.services.problems import Problem
from records_bridge.services.sms import SmsError, normalise_mobile
from wire.random_secrets import new_secret, secret_hash, secret_matches

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "queue_alembic_version"
WRITE_ATTEMPTS = 5
BOOKING_DAYS_AHEAD = 90
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
ABHA_NUMBER = re.compile(r"^[0-9]{14}$")
SLOT = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
MAX_NAME = 80
SECRET_PREFIX = {"kiosk": "qk_", "board": "qb_"}

metadata = MetaData()
facilities = Table("queue_facilities", metadata, Column("id", Text, primary_key=True), Column("name", Text), Column("tz", Text))
departments = Table("queue_departments", metadata, Column("id", Text, primary_key=True), Column("facility_id", Text),
                    Column("name", Text))  # fmt: skip
counters = Table("queue_counters", metadata, Column("id", Text, primary_key=True), Column("facility_id", Text),
                 Column("department_id", Text), Column("name", Text))  # fmt: skip
queues = Table(
    "queue_queues", metadata,
    Column("id", Text, primary_key=True), Column("facility_id", Text), Column("department_id", Text), Column("name", Text),
    Column("doctor", Text), Column("prefix", Text), Column("service_s", Integer), Column("remind_ahead", Integer),
)  # fmt: skip
day_numbers = Table("queue_day_numbers", metadata, Column("queue_id", Text, primary_key=True), Column("day", Text, primary_key=True),
                    Column("last_number", Integer))  # fmt: skip
tokens = Table(
    "queue_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True), Column("queue_id", Text), Column("facility_id", Text),
    Column("day", Text), Column("number", Integer), Column("category", Text), Column("source", Text), Column("status", Text),
    Column("patient_key", Text), Column("abha", Text), Column("mobile", Text), Column("booking_id", Text),
    Column("booking_hash", Text), Column("slot", Text), Column("place_ms", BigInteger), Column("issued_ms", BigInteger),
    Column("estimate_s", Integer), Column("called_ms", BigInteger), Column("wait_s", Integer), Column("calls", Integer),
    Column("counter_id", Text), Column("finished_ms", BigInteger), Column("reminded_ms", BigInteger),
    Column("transferred_from", Integer), Column("transferred_to", Integer),
)  # fmt: skip
calls = Table(
    "queue_calls", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True), Column("queue_id", Text), Column("facility_id", Text),
    Column("day", Text), Column("token_id", Integer), Column("counter_id", Text), Column("at_ms", BigInteger), Column("recall", Boolean),
)  # fmt: skip
credentials = Table("queue_credentials", metadata, Column("name", Text, primary_key=True), Column("kind", Text),
                    Column("facility_id", Text), Column("secret_hash", Text), Column("created_ms", BigInteger))  # fmt: skip

Clock = Callable[[], int]
_RANK = case(rules.CATEGORY_RANK, value=tokens.c.category)  # rules.call_key's first element, in SQL


def migrate(engine: Engine) -> None:
    """The queue's schema at its newest revision (a no-op when it is there already)."""
    migrate_to_head(engine, MIGRATIONS, VERSION_TABLE)


# ----------------------------------------------------------------------------------------------------- checked input


def slug(value: Any, what: str) -> str:
    if not isinstance(value, str) or not SLUG.match(value):
        raise Problem(422, f"{what} must be 1 to 40 lower-case letters, digits and hyphens (e.g. opd-medicine), not {str(value)[:50]!r}",
                      reason="bad_id")  # fmt: skip
    return value


def name(value: Any, what: str = "name") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME or not value.isprintable():
        raise Problem(422, f"{what} must be 1 to {MAX_NAME} printable characters", reason="bad_name")
    return value.strip()


@dataclass(frozen=True, slots=True)
class Patient:
    """Who a token is for, as far as the queue needs to know: no name, only what finds a duplicate and sends an SMS."""

    abha: str | None = None  # 14-digit ABHA number
    mobile: str | None = None  # +91XXXXXXXXXX
    ref: str | None = None  # the booking client's own patient reference

    @property
    def key(self) -> str | None:
        """The identity the one-token-per-queue rule uses: ABHA number, else mobile, else the booking's reference."""
        if self.abha:
            return f"abha:{self.abha}"
        if self.mobile:
            return f"mobile:{self.mobile}"
        return f"ref:{self.ref}" if self.ref else None

    @classmethod
    def of(cls, abha: Any = None, mobile: Any = None, ref: Any = None) -> Patient:
        if abha is not None:
            digits = re.sub(r"[\s-]", "", str(abha))
            if not ABHA_NUMBER.match(digits):
                raise Problem(422, "an ABHA number has 14 digits (XX-XXXX-XXXX-XXXX)", reason="bad_abha")
            abha = digits
        if mobile is not None:
            try:
                mobile = normalise_mobile(str(mobile)[:20])
            except SmsError as exc:
                raise Problem(422, f"{exc}; give a 10-digit Indian mobile number", reason="bad_mobile") from None
        if ref is not None and (not isinstance(ref, str) or not 1 <= len(ref) <= 64 or not ref.isprintable()):
            raise Problem(422, "patient_ref must be 1 to 64 printable characters", reason="bad_ref")
        return cls(abha, mobile, ref)


@dataclass(frozen=True, slots=True)
class Booking:
    booking_id: str
    day: str
    slot: str | None
    digest: str  # of the request's content: an identical replay matches it


def booking_digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------------- the store


class Store:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    # ------------------------------------------------------------------------------------------------- structure

    def put_facility(self, fid: str, fname: str, tz: str = rules.DEFAULT_TZ) -> dict[str, Any]:
        slug(fid, "facility id")
        fname = name(fname)
        try:
            rules.zone(tz)
        except rules.RuleError as exc:
            raise Problem(422, str(exc), reason="bad_tz") from None
        with write_transaction(self.engine) as conn:
            self._upsert(conn, facilities, fid, {"name": fname, "tz": tz})
        return {"id": fid, "name": fname, "tz": tz}

    def put_department(self, did: str, facility_id: str, dname: str) -> dict[str, Any]:
        slug(did, "department id")
        dname = name(dname)
        with write_transaction(self.engine) as conn:
            self._facility(conn, facility_id)
            self._same_facility(conn, departments, did, facility_id)
            self._upsert(conn, departments, did, {"facility_id": facility_id, "name": dname})
        return {"id": did, "facility_id": facility_id, "name": dname}

    def put_counter(self, cid: str, facility_id: str, cname: str, department_id: str | None = None) -> dict[str, Any]:
        slug(cid, "counter id")
        cname = name(cname)
        with write_transaction(self.engine) as conn:
            self._facility(conn, facility_id)
            if department_id is not None:
                self._department(conn, department_id, facility_id)
            self._same_facility(conn, counters, cid, facility_id)
            self._upsert(conn, counters, cid, {"facility_id": facility_id, "department_id": department_id, "name": cname})
        return {"id": cid, "facility_id": facility_id, "department_id": department_id, "name": cname}

    def put_queue(self, qid: str, department_id: str, qname: str, *, prefix: str = "", doctor: str | None = None,
                  service_s: int = rules.DEFAULT_SERVICE_S, remind_ahead: int = 3) -> dict[str, Any]:  # fmt: skip
        slug(qid, "queue id")
        qname = name(qname)
        if doctor is not None:
            doctor = name(doctor, "doctor")
        if not isinstance(prefix, str) or not re.match(r"^[A-Z0-9]{0,4}$", prefix):
            raise Problem(422, "prefix must be up to 4 capital letters or digits (e.g. MED)", reason="bad_prefix")
        if not isinstance(service_s, int) or not 10 <= service_s <= 7200:
            raise Problem(422, "service_s (the default seconds per patient) must be 10 to 7200", reason="bad_service_s")
        if not isinstance(remind_ahead, int) or not 0 <= remind_ahead <= 50:
            raise Problem(422, "remind_ahead must be 0 (no reminders) to 50 patients", reason="bad_remind_ahead")
        with write_transaction(self.engine) as conn:
            dep = conn.execute(select(departments).where(departments.c.id == department_id)).first()
            if dep is None:
                raise Problem(404, f"no department {department_id!r}: create it first", reason="unknown_department")
            self._same_facility(conn, queues, qid, dep.facility_id)
            self._upsert(conn, queues, qid, {"facility_id": dep.facility_id, "department_id": department_id, "name": qname,
                                             "doctor": doctor, "prefix": prefix, "service_s": service_s, "remind_ahead": remind_ahead})  # fmt: skip
        return self.queue(qid)

    def queue(self, qid: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return dict(self._queue(conn, qid)._mapping)

    def structure(self, facility_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            fac = self._facility(conn, facility_id)
            out = dict(fac._mapping)
            for key, table in (("departments", departments), ("counters", counters), ("queues", queues)):
                out[key] = [dict(r._mapping) for r in conn.execute(select(table).where(table.c.facility_id == facility_id).order_by(table.c.id))]
        return out

    def facility_of_counter(self, counter_id: str) -> str:
        with self.engine.connect() as conn:
            return self._counter(conn, counter_id).facility_id

    # ----------------------------------------------------------------------------------------------- credentials

    def add_credential(self, kind: str, facility_id: str, cname: str) -> str:
        """A kiosk's bearer secret or a board key for ``facility_id``; returned once, stored only as its hash."""
        if kind not in SECRET_PREFIX:
            raise Problem(422, "kind must be kiosk or board", reason="bad_kind")
        slug(cname, "credential name")
        secret = new_secret(prefix=SECRET_PREFIX[kind])
        try:
            with write_transaction(self.engine) as conn:
                self._facility(conn, facility_id)
                conn.execute(insert(credentials).values(name=cname, kind=kind, facility_id=facility_id, secret_hash=secret_hash(secret),
                                                        created_ms=self.clock()))  # fmt: skip
        except IntegrityError:
            raise Problem(409, f"a credential named {cname!r} exists already; choose another name", reason="exists") from None
        return secret

    def credential(self, secret: str, kind: str) -> str | None:
        """The facility a kiosk secret or board key of ``kind`` belongs to; None for any other text."""
        if not secret.startswith(SECRET_PREFIX.get(kind, "\0")) or len(secret) > 100:
            return None
        digest = secret_hash(secret)
        with self.engine.connect() as conn:
            row = conn.execute(select(credentials).where(credentials.c.secret_hash == digest, credentials.c.kind == kind)).first()
        if row is None or not secret_matches(row.secret_hash, secret):
            return None
        return row.facility_id

    # ------------------------------------------------------------------------------------------------- issuing

    def today(self, facility_id: str) -> str:
        with self.engine.connect() as conn:
            return self._today(conn, facility_id)

    def issue(self, queue_id: str, patient: Patient, *, category: str = "walk_in", source: str = "counter",
              booking: Booking | None = None, facility_id: str | None = None) -> tuple[dict[str, Any], bool]:  # fmt: skip
        """A token in ``queue_id`` (today's, or the booking's day): ``(token, created)``; ``created`` is False when the
        patient already holds an active token there (or the booking id was used already with the same content), which
        is returned instead. ``facility_id``: the caller's facility (a kiosk, a scan), which the queue must belong to."""
        if category not in rules.CATEGORIES:
            raise Problem(422, f"category must be one of {', '.join(rules.CATEGORIES)}", reason="bad_category")
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with write_transaction(self.engine) as conn:
                    token_id, created = self._issue(conn, queue_id, patient, category, source, booking, facility_id)
                break
            except IntegrityError:  # a duplicate slipped past the check (two first requests at once): look again
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
        return self.token(token_id), created

    def _issue(self, conn: Connection, queue_id: str, patient: Patient, category: str, source: str,
               booking: Booking | None, facility_id: str | None) -> tuple[int, bool]:  # fmt: skip
        q = self._queue(conn, queue_id)
        if facility_id is not None and q.facility_id != facility_id:
            raise Problem(404, f"no queue {queue_id!r} at this facility", reason="unknown_queue")
        now = self.clock()
        today = self._today(conn, q.facility_id)
        day = today
        if booking is not None:
            # a replay is answered with its token before the day is checked: a booking made in time and replayed after
            # its day (a client down over a weekend) is the same booking, not a refused one
            if (same := self._same_booking(conn, booking)) is not None:
                return same, False
            self._check_booking_day(booking.day, today)
            day = booking.day
        self._lock_day(conn, queue_id, day)  # everything below runs one request at a time per queue-day
        if booking is not None and (same := self._same_booking(conn, booking)) is not None:  # made meanwhile
            return same, False
        key = patient.key
        if key is not None:
            held = conn.execute(select(tokens.c.id).where(tokens.c.queue_id == queue_id, tokens.c.day == day, tokens.c.patient_key == key,
                                                          tokens.c.status.in_(rules.ACTIVE))).first()  # fmt: skip
            if held is not None:
                return held.id, False
        number = conn.execute(update(day_numbers).where(day_numbers.c.queue_id == queue_id, day_numbers.c.day == day)
                              .values(last_number=day_numbers.c.last_number + 1).returning(day_numbers.c.last_number)).scalar_one()  # fmt: skip
        estimate = self._estimate(conn, q, day, category, now, number, now) if day == today else None
        token_id = conn.execute(insert(tokens).values(
            queue_id=queue_id, facility_id=q.facility_id, day=day, number=number, category=category, source=source, status="waiting",
            patient_key=key, abha=patient.abha, mobile=patient.mobile, booking_id=booking.booking_id if booking else None,
            booking_hash=booking.digest if booking else None, slot=booking.slot if booking else None, place_ms=now, issued_ms=now,
            estimate_s=estimate, calls=0,
        ).returning(tokens.c.id)).scalar_one()  # fmt: skip
        return token_id, True

    @staticmethod
    def _same_booking(conn: Connection, booking: Booking) -> int | None:
        """The token an earlier identical booking got; a different booking under the same id is a 409."""
        same = conn.execute(select(tokens.c.id, tokens.c.booking_hash).where(tokens.c.booking_id == booking.booking_id)).first()
        if same is None:
            return None
        if same.booking_hash != booking.digest:
            raise Problem(409, f"booking id {booking.booking_id!r} was used for a different booking; a replay must be identical",
                          reason="booking_id_reused")  # fmt: skip
        return same.id

    def _check_booking_day(self, day: str, today: str) -> None:
        try:
            wanted = date.fromisoformat(day)
        except (TypeError, ValueError):
            raise Problem(422, f"day must be a date, YYYY-MM-DD, not {str(day)[:20]!r}", reason="bad_day") from None
        first = date.fromisoformat(today)
        if not first <= wanted <= first + timedelta(days=BOOKING_DAYS_AHEAD):
            raise Problem(422, f"a booking's day must be from today ({today}) to {BOOKING_DAYS_AHEAD} days ahead, not {day}",
                          reason="bad_day")  # fmt: skip

    def _lock_day(self, conn: Connection, queue_id: str, day: str) -> None:
        ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(day_numbers)
        conn.execute(ins.values(queue_id=queue_id, day=day, last_number=0).on_conflict_do_nothing())
        conn.execute(select(day_numbers.c.last_number).where(day_numbers.c.queue_id == queue_id, day_numbers.c.day == day)
                     .with_for_update())  # fmt: skip

    # ------------------------------------------------------------------------------------------------- reading

    def token(self, token_id: int) -> dict[str, Any]:
        """A token as its holder and the clerk see it: number, status, and while waiting its position and estimate now."""
        with self.engine.connect() as conn:
            t = self._token(conn, token_id)
            q = self._queue(conn, t.queue_id)
            out = self._view(t, q)
            if t.status == "waiting" and t.day == self._today(conn, t.facility_id):
                now = self.clock()
                position = self._position(conn, t)
                out["position"] = position
                out["estimate_now_s"] = rules.estimate_wait_s(position, self._interval(conn, q, t.day, now))
        return out

    def token_by_number(self, queue_id: str, day: str, number: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(tokens.c.id).where(tokens.c.queue_id == queue_id, tokens.c.day == day, tokens.c.number == number)).first()
        if row is None:
            raise Problem(404, f"queue {queue_id!r} has no token {number} on {day}", reason="unknown_token")
        return self.token(row.id)

    def waiting(self, queue_id: str) -> list[dict[str, Any]]:
        """Today's waiting tokens of a queue in the order they will be called."""
        with self.engine.connect() as conn:
            q = self._queue(conn, queue_id)
            day = self._today(conn, q.facility_id)
            rows = conn.execute(select(tokens).where(tokens.c.queue_id == queue_id, tokens.c.day == day, tokens.c.status == "waiting")).all()
        ordered = sorted(rows, key=lambda r: rules.call_key(r.category, r.place_ms, r.number))
        return [self._view(r, q) | {"position": i + 1} for i, r in enumerate(ordered)]

    @staticmethod
    def _view(t: Any, q: Any) -> dict[str, Any]:
        return {"id": t.id, "queue_id": t.queue_id, "facility_id": t.facility_id, "day": t.day, "number": t.number,
                "display": rules.display_number(q.prefix, t.number), "category": t.category, "source": t.source, "status": t.status,
                "counter_id": t.counter_id, "estimate_at_issue_s": t.estimate_s, "wait_s": t.wait_s, "calls": t.calls,
                "booking_id": t.booking_id, "slot": t.slot, "transferred_from": t.transferred_from, "transferred_to": t.transferred_to,
                "has_mobile": t.mobile is not None}  # fmt: skip

    def _position(self, conn: Connection, t: Any) -> int:
        return self._ahead(conn, t.queue_id, t.day, t.category, t.place_ms, t.number) + 1

    @staticmethod
    def _ahead(conn: Connection, queue_id: str, day: str, category: str, place_ms: int, number: int) -> int:
        """How many waiting tokens come before (category, place, number) in ``rules.call_key`` order, counted in SQL."""
        rank, mine = _RANK, rules.call_key(category, place_ms, number)[0]
        before = or_(rank < mine, and_(rank == mine, or_(tokens.c.place_ms < place_ms,
                                                         and_(tokens.c.place_ms == place_ms, tokens.c.number < number))))  # fmt: skip
        return int(conn.execute(select(func.count()).select_from(tokens).where(
            tokens.c.queue_id == queue_id, tokens.c.day == day, tokens.c.status == "waiting", before)).scalar_one())  # fmt: skip

    def _interval(self, conn: Connection, q: Any, day: str, now: int) -> float:
        times = conn.execute(select(calls.c.at_ms).where(calls.c.queue_id == q.id, calls.c.day == day, calls.c.recall.is_(False),
                                                         calls.c.at_ms >= now - rules.WINDOW_MS)
                             .order_by(calls.c.at_ms.desc()).limit(rules.WINDOW_CALLS)).scalars().all()  # fmt: skip
        return rules.call_interval_s(times, now, q.service_s)

    def _estimate(self, conn: Connection, q: Any, day: str, category: str, place_ms: int, number: int, now: int) -> int:
        position = self._ahead(conn, q.id, day, category, place_ms, number) + 1
        return rules.estimate_wait_s(position, self._interval(conn, q, day, now))

    # ------------------------------------------------------------------------------------------ working the queue

    def call_next(self, queue_id: str, counter_id: str) -> dict[str, Any]:
        """Call today's first waiting token of ``queue_id`` to ``counter_id``; 409 when none waits or the counter is busy."""
        with write_transaction(self.engine) as conn:
            q = self._queue(conn, queue_id)
            c = self._counter(conn, counter_id)
            if c.facility_id != q.facility_id:
                raise Problem(422, f"counter {counter_id!r} is not at the facility of queue {queue_id!r}", reason="other_facility")
            day = self._today(conn, q.facility_id)
            self._lock_day(conn, queue_id, day)
            self._counter_free(conn, counter_id, day)
            rows = conn.execute(select(tokens.c.id, tokens.c.category, tokens.c.place_ms, tokens.c.number)
                                .where(tokens.c.queue_id == queue_id, tokens.c.day == day, tokens.c.status == "waiting")).all()  # fmt: skip
            if not rows:
                raise Problem(409, f"nobody is waiting in {q.name} today ({day}); nothing was changed", reason="empty_queue")
            first = min(rows, key=lambda r: rules.call_key(r.category, r.place_ms, r.number))
            now = self.clock()
            t = self._token(conn, first.id)
            conn.execute(update(tokens).where(tokens.c.id == t.id).values(
                status="called", counter_id=counter_id, called_ms=now, calls=1,
                wait_s=max(0, round((now - rules.wait_start_ms(t.issued_ms, t.day, t.slot, self._facility(conn, q.facility_id).tz)) / 1000))))  # fmt: skip
            conn.execute(insert(calls).values(queue_id=queue_id, facility_id=q.facility_id, day=day, token_id=t.id, counter_id=counter_id,
                                              at_ms=now, recall=False))  # fmt: skip
            token_id = t.id
        return self.token(token_id)

    def act(self, token_id: int, action: str, counter_id: str | None = None) -> dict[str, Any]:
        """``skip`` (called → skipped: not at the counter now, may be recalled), ``no_show`` (called or skipped → final),
        ``recall`` (called: announce again; skipped: call again, to ``counter_id`` or its last counter), ``complete``
        (called → completed)."""
        allowed = {"skip": ("called",), "no_show": ("called", "skipped"), "recall": ("called", "skipped"), "complete": ("called",)}
        if action not in allowed:
            raise Problem(404, f"no action {action[:20]!r}; one of {', '.join(allowed)}", reason="bad_action")
        with write_transaction(self.engine) as conn:
            t = self._token(conn, token_id)
            self._same_day(conn, t)
            self._lock_day(conn, t.queue_id, t.day)
            t = self._token(conn, token_id)  # as it is now that we hold the lock
            if t.status not in allowed[action]:
                raise Problem(409, f"token {t.number} is {t.status.replace('_', ' ')}; {action.replace('_', ' ')} needs it "
                                   f"{' or '.join(allowed[action])}; nothing was changed", reason="wrong_status")  # fmt: skip
            now = self.clock()
            values: dict[str, Any] = {}
            if action == "skip":
                values = {"status": "skipped"}
            elif action in ("no_show", "complete"):
                values = {"status": "no_show" if action == "no_show" else "completed", "finished_ms": now}
            else:
                counter = counter_id or t.counter_id
                c = self._counter(conn, counter)
                if c.facility_id != t.facility_id:
                    raise Problem(422, f"counter {counter!r} is at another facility", reason="other_facility")
                if t.status == "skipped":
                    self._counter_free(conn, counter, t.day)
                values = {"status": "called", "counter_id": counter, "calls": t.calls + 1}
                conn.execute(insert(calls).values(queue_id=t.queue_id, facility_id=t.facility_id, day=t.day, token_id=t.id,
                                                  counter_id=counter, at_ms=now, recall=True))  # fmt: skip
            conn.execute(update(tokens).where(tokens.c.id == t.id).values(**values))
        return self.token(token_id)

    def transfer(self, token_id: int, to_queue: str) -> dict[str, Any]:
        """Move a token to another queue of the same facility, today. It gets that queue's next number but keeps its
        place: its ``place_ms`` (when it first joined a queue today) orders it among tokens of its category there."""
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with write_transaction(self.engine) as conn:
                    new_id = self._transfer(conn, token_id, to_queue)
                break
            except IntegrityError:
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
        return self.token(new_id)

    def _transfer(self, conn: Connection, token_id: int, to_queue: str) -> int:
        t = self._token(conn, token_id)
        self._same_day(conn, t)
        target = self._queue(conn, to_queue)
        if target.facility_id != t.facility_id:
            raise Problem(422, f"queue {to_queue!r} is at another facility; issue a new token there", reason="other_facility")
        if target.id == t.queue_id:
            raise Problem(422, "the token is in that queue already", reason="same_queue")
        for qid in sorted((t.queue_id, to_queue)):  # both queue-days, always in the same order: no deadlock
            self._lock_day(conn, qid, t.day)
        t = self._token(conn, token_id)
        if t.status not in ("waiting", "called", "skipped"):
            raise Problem(409, f"token {t.number} is {t.status.replace('_', ' ')}: it cannot be transferred", reason="wrong_status")
        if t.patient_key is not None:
            held = conn.execute(select(tokens.c.number).where(tokens.c.queue_id == to_queue, tokens.c.day == t.day,
                                                              tokens.c.patient_key == t.patient_key, tokens.c.status.in_(rules.ACTIVE))).first()  # fmt: skip
            if held is not None:
                raise Problem(409, f"this patient already holds token {held.number} in {target.name}; nothing was changed", reason="duplicate")
        now = self.clock()
        conn.execute(update(tokens).where(tokens.c.id == t.id).values(status="transferred", finished_ms=now))
        number = conn.execute(update(day_numbers).where(day_numbers.c.queue_id == to_queue, day_numbers.c.day == t.day)
                              .values(last_number=day_numbers.c.last_number + 1).returning(day_numbers.c.last_number)).scalar_one()  # fmt: skip
        estimate = self._estimate(conn, target, t.day, t.category, t.place_ms, number, now)
        new_id = conn.execute(insert(tokens).values(
            queue_id=to_queue, facility_id=t.facility_id, day=t.day, number=number, category=t.category, source=t.source, status="waiting",
            patient_key=t.patient_key, abha=t.abha, mobile=t.mobile, slot=t.slot, place_ms=t.place_ms, issued_ms=now, estimate_s=estimate,
            calls=0, transferred_from=t.id,
        ).returning(tokens.c.id)).scalar_one()  # fmt: skip
        conn.execute(update(tokens).where(tokens.c.id == t.id).values(transferred_to=new_id))
        return new_id

    def claim_reminders(self, queue_id: str) -> list[dict[str, Any]]:
        """Today's waiting tokens of ``queue_id`` now due a reminder (``rules.reminder_due``) that have a mobile and were
        never reminded: each is marked reminded in this transaction, so it is handed out once, ever."""
        out = []
        with write_transaction(self.engine) as conn:
            q = self._queue(conn, queue_id)
            day = self._today(conn, q.facility_id)
            rows = conn.execute(select(tokens).where(tokens.c.queue_id == queue_id, tokens.c.day == day, tokens.c.status == "waiting")).all()
            now = self.clock()
            for position, t in enumerate(sorted(rows, key=lambda r: rules.call_key(r.category, r.place_ms, r.number)), start=1):
                if not rules.reminder_due(position, q.remind_ahead):
                    break
                if t.mobile is None or t.reminded_ms is not None:
                    continue
                claimed = conn.execute(update(tokens).where(tokens.c.id == t.id, tokens.c.reminded_ms.is_(None)).values(reminded_ms=now))
                if claimed.rowcount == 1:
                    out.append({"token_id": t.id, "mobile": t.mobile, "display": rules.display_number(q.prefix, t.number),
                                "position": position, "queue": q.name})  # fmt: skip
        return out

    # ------------------------------------------------------------------------------------------- board, metrics

    def board(self, facility_id: str, recent: int = 8) -> dict[str, Any]:
        """What the facility's display board shows: each counter's called number and the latest calls. Numbers only."""
        with self.engine.connect() as conn:
            fac = self._facility(conn, facility_id)
            day = rules.service_day(self.clock(), fac.tz).isoformat()
            prefix = dict(conn.execute(select(queues.c.id, queues.c.prefix).where(queues.c.facility_id == facility_id)).all())
            names = dict(conn.execute(select(counters.c.id, counters.c.name).where(counters.c.facility_id == facility_id)).all())
            serving = {r.counter_id: rules.display_number(prefix[r.queue_id], r.number) for r in conn.execute(
                select(tokens.c.counter_id, tokens.c.queue_id, tokens.c.number)
                .where(tokens.c.facility_id == facility_id, tokens.c.day == day, tokens.c.status == "called"))}  # fmt: skip
            latest = conn.execute(select(calls.c.id, calls.c.counter_id, calls.c.at_ms, tokens.c.queue_id, tokens.c.number)
                                  .join(tokens, tokens.c.id == calls.c.token_id)
                                  .where(calls.c.facility_id == facility_id, calls.c.day == day)
                                  .order_by(calls.c.id.desc()).limit(recent)).all()  # fmt: skip
        return {
            "facility": fac.name, "day": day,
            "counters": [{"id": cid, "name": names[cid], "number": serving.get(cid)} for cid in sorted(names)],
            "calls": [{"id": r.id, "counter": names.get(r.counter_id, r.counter_id), "number": rules.display_number(prefix[r.queue_id], r.number),
                       "at_ms": r.at_ms} for r in latest],
        }  # fmt: skip

    def metrics(self, facility_id: str, day: str | None = None) -> dict[str, Any]:
        """Per queue, for ``day`` (default today): tokens issued, served, called, no-shows, waiting, mean and p90 wait,
        and the estimates' mean absolute error."""
        with self.engine.connect() as conn:
            fac = self._facility(conn, facility_id)
            day = day or rules.service_day(self.clock(), fac.tz).isoformat()
            qs = conn.execute(select(queues).where(queues.c.facility_id == facility_id).order_by(queues.c.id)).all()
            rows = conn.execute(select(tokens.c.queue_id, tokens.c.status, tokens.c.wait_s, tokens.c.estimate_s)
                                .where(tokens.c.facility_id == facility_id, tokens.c.day == day)).all()  # fmt: skip
        per: dict[str, list[tuple[str, int | None, int | None]]] = {q.id: [] for q in qs}
        for r in rows:
            per.setdefault(r.queue_id, []).append((r.status, r.wait_s, r.estimate_s))
        out = {qid: _figures(v) for qid, v in per.items()}
        return {"facility_id": facility_id, "day": day, "queues": out, "all": _figures([t for v in per.values() for t in v])}

    def count_tokens(self, queue_id: str, day: str) -> list[tuple[int, str | None, str]]:
        """(number, patient_key, status) of every token of a queue-day, by number (for tests and the benchmark)."""
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(select(tokens.c.number, tokens.c.patient_key, tokens.c.status)
                                                   .where(tokens.c.queue_id == queue_id, tokens.c.day == day).order_by(tokens.c.number))]  # fmt: skip

    # ------------------------------------------------------------------------------------------------- helpers

    @staticmethod
    def _upsert(conn: Connection, table: Table, key: str, values: dict[str, Any]) -> None:
        done = conn.execute(update(table).where(table.c.id == key).values(**values))
        if done.rowcount == 0:
            conn.execute(insert(table).values(id=key, **values))

    @staticmethod
    def _same_facility(conn: Connection, table: Table, key: str, facility_id: str) -> None:
        row = conn.execute(select(table.c.facility_id).where(table.c.id == key)).first()
        if row is not None and row.facility_id != facility_id:
            raise Problem(409, f"{key!r} exists already at facility {row.facility_id!r}; ids are unique across facilities", reason="exists")

    @staticmethod
    def _facility(conn: Connection, facility_id: str) -> Any:
        row = conn.execute(select(facilities).where(facilities.c.id == facility_id)).first()
        if row is None:
            raise Problem(404, f"no facility {str(facility_id)[:50]!r}", reason="unknown_facility")
        return row

    @staticmethod
    def _department(conn: Connection, department_id: str, facility_id: str) -> Any:
        row = conn.execute(select(departments).where(departments.c.id == department_id)).first()
        if row is None or row.facility_id != facility_id:
            raise Problem(404, f"no department {str(department_id)[:50]!r} at facility {facility_id!r}", reason="unknown_department")
        return row

    @staticmethod
    def _queue(conn: Connection, queue_id: str) -> Any:
        row = conn.execute(select(queues).where(queues.c.id == queue_id)).first()
        if row is None:
            raise Problem(404, f"no queue {str(queue_id)[:50]!r}", reason="unknown_queue")
        return row

    @staticmethod
    def _counter(conn: Connection, counter_id: str | None) -> Any:
        row = conn.execute(select(counters).where(counters.c.id == counter_id)).first() if counter_id else None
        if row is None:
            raise Problem(404 if counter_id else 422, f"no counter {str(counter_id)[:50]!r}" if counter_id else "name the counter",
                          reason="unknown_counter")  # fmt: skip
        return row

    @staticmethod
    def _token(conn: Connection, token_id: int) -> Any:
        row = conn.execute(select(tokens).where(tokens.c.id == token_id)).first()
        if row is None:
            raise Problem(404, f"no token with id {token_id}", reason="unknown_token")
        return row

    def _today(self, conn: Connection, facility_id: str) -> str:
        return rules.service_day(self.clock(), self._facility(conn, facility_id).tz).isoformat()

    def _same_day(self, conn: Connection, t: Any) -> None:
        today = self._today(conn, t.facility_id)
        if t.day != today:
            raise Problem(409, f"token {t.number} is for {t.day}, and today is {today}: it cannot be worked today; "
                               "issue the patient a new token; nothing was changed", reason="other_day")  # fmt: skip

    @staticmethod
    def _counter_free(conn: Connection, counter_id: str, day: str) -> None:
        """Refuse if the counter still serves a token today. The counter's row is locked first (PostgreSQL; SQLite
        writes one at a time anyway), so two calls to one counter from two queues cannot both find it free."""
        if conn.execute(select(counters.c.id).where(counters.c.id == counter_id).with_for_update()).first() is None:
            raise Problem(404, f"no counter {counter_id!r}", reason="unknown_counter")
        busy = conn.execute(select(tokens.c.number).where(tokens.c.counter_id == counter_id, tokens.c.day == day,
                                                          tokens.c.status == "called")).first()  # fmt: skip
        if busy is not None:
            raise Problem(409, f"counter {counter_id!r} is still serving token {busy.number}: complete it, skip it or mark it a no-show "
                               "first; nothing was changed", reason="counter_busy")  # fmt: skip


def _figures(tokens_of_day: Iterable[tuple[str, int | None, int | None]]) -> dict[str, Any]:
    figures = dataclasses.asdict(rules.day_figures(list(tokens_of_day)))
    return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in figures.items()}
