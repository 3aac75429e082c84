"""The locker's first schema: patients, sign-in codes and sessions, records, consent artefacts, share links, the access log.

The access log is append-only in the database itself: a trigger refuses every
UPDATE and DELETE of its rows (SQLite and PostgreSQL alike).

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = "the locker access log is append-only: its rows cannot be changed or deleted"


def upgrade() -> None:
    op.create_table(
        "locker_patients",
        sa.Column("patient_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("abha", sa.Text, nullable=True, unique=True),  # 14 digits
        sa.Column("facility", sa.Text, nullable=True),  # with mrn: the other key
        sa.Column("mrn", sa.Text, nullable=True),
        sa.Column("mobile", sa.Text, nullable=True, unique=True),  # +91XXXXXXXXXX: one locker per number
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("facility", "mrn", name="locker_patients_mrn"),
        sa.CheckConstraint("abha IS NOT NULL OR (facility IS NOT NULL AND mrn IS NOT NULL)", name="locker_patients_key"),
    )
    op.create_table(
        "locker_otps",
        sa.Column("mobile", sa.Text, primary_key=True),
        sa.Column("code_hash", sa.Text, nullable=False),  # "" once used up
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("tries_left", sa.Integer, nullable=False),
        sa.Column("window_start_ms", sa.BigInteger, nullable=False),
        sa.Column("sends", sa.Integer, nullable=False),
    )
    op.create_table(
        "locker_sessions",
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("locker_patients.patient_id"), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "locker_records",
        sa.Column("record_id", sa.Text, primary_key=True),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("locker_patients.patient_id"), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("date", sa.Text, nullable=False),  # YYYY-MM-DD
        sa.Column("facility", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("bundle", sa.Text, nullable=True),
        sa.Column("pdf", sa.LargeBinary, nullable=True),
        sa.Column("digest", sa.Text, nullable=False),  # SHA-256 of the PUT body: an identical replay changes nothing
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("locker_records_patient", "locker_records", ["patient_id", "date"])
    op.create_table(
        "locker_consents",
        sa.Column("consent_id", sa.Text, primary_key=True),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("locker_patients.patient_id"), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("requester_kind", sa.Text, nullable=False),
        sa.Column("requester_id", sa.Text, nullable=False),
        sa.Column("requester_name", sa.Text, nullable=False),
        sa.Column("requested_by", sa.Text, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("types", sa.Text, nullable=False),  # JSON list
        sa.Column("date_from", sa.Text, nullable=False),
        sa.Column("date_to", sa.Text, nullable=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("fhir", sa.Text, nullable=False),  # the FHIR R4 Consent, rebuilt on every change
        sa.CheckConstraint("state IN ('REQUESTED', 'GRANTED', 'DENIED', 'REVOKED', 'EXPIRED')", name="locker_consents_state"),
    )
    op.create_index("locker_consents_patient", "locker_consents", ["patient_id", "created_ms"])
    op.create_index("locker_consents_open", "locker_consents", ["state", "expires_ms"])
    op.create_table(
        "locker_share_links",
        sa.Column("link_id", sa.Text, primary_key=True),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("locker_patients.patient_id"), nullable=False),
        sa.Column("record_id", sa.Text, sa.ForeignKey("locker_records.record_id"), nullable=False),
        sa.Column("token", sa.Text, nullable=False),  # the signed token, so the patient can show the QR again
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("revoked_ms", sa.BigInteger, nullable=True),
    )
    op.create_index("locker_share_links_patient", "locker_share_links", ["patient_id", "created_ms"])
    op.create_table(
        "locker_access_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("patient_id", sa.Integer, nullable=True),  # None: a refusal that names no known patient
        sa.Column("actor_kind", sa.Text, nullable=False),  # patient, staff, share-link, system
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("record_id", sa.Text, nullable=True),
        sa.Column("consent_id", sa.Text, nullable=True),
        sa.Column("link_id", sa.Text, nullable=True),
        sa.Column("outcome", sa.Text, nullable=False),  # allowed or refused
        sa.Column("reason", sa.Text, nullable=False),
        sa.CheckConstraint("outcome IN ('allowed', 'refused')", name="locker_access_log_outcome"),
    )
    op.create_index("locker_access_log_patient", "locker_access_log", ["patient_id", "seq"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"""CREATE FUNCTION locker_access_log_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$ LANGUAGE plpgsql""")
        op.execute("""CREATE TRIGGER locker_access_log_append_only BEFORE UPDATE OR DELETE ON locker_access_log
            FOR EACH ROW EXECUTE FUNCTION locker_access_log_append_only()""")
        op.execute("""CREATE TRIGGER locker_access_log_no_truncate BEFORE TRUNCATE ON locker_access_log
            FOR EACH STATEMENT EXECUTE FUNCTION locker_access_log_append_only()""")
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER locker_access_log_no_{event.lower()} BEFORE {event} ON locker_access_log
                BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END""")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TABLE locker_access_log")
        op.execute("DROP FUNCTION locker_access_log_append_only()")
    else:
        op.drop_table("locker_access_log")
    for table in ("locker_share_links", "locker_consents", "locker_records", "locker_sessions", "locker_otps", "locker_patients"):
        op.drop_table(table)
