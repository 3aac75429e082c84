"""The queue's first schema: facilities, departments, counters, queues, the daily number counters, tokens, calls,
and the kiosk and board credentials.

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

ACTIVE = "status IN ('waiting', 'called', 'skipped')"


def upgrade() -> None:
    op.create_table(
        "queue_facilities",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("tz", sa.Text, nullable=False),
    )
    op.create_table(
        "queue_departments",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("facility_id", sa.Text, sa.ForeignKey("queue_facilities.id"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
    )
    op.create_table(
        "queue_counters",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("facility_id", sa.Text, sa.ForeignKey("queue_facilities.id"), nullable=False),
        sa.Column("department_id", sa.Text, sa.ForeignKey("queue_departments.id"), nullable=True),
        sa.Column("name", sa.Text, nullable=False),
    )
    op.create_table(
        "queue_queues",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("facility_id", sa.Text, sa.ForeignKey("queue_facilities.id"), nullable=False),
        sa.Column("department_id", sa.Text, sa.ForeignKey("queue_departments.id"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("doctor", sa.Text, nullable=True),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("service_s", sa.Integer, nullable=False),
        sa.Column("remind_ahead", sa.Integer, nullable=False),
    )
    op.create_table(
        "queue_day_numbers",  # one row per queue and day: the last number given, taken under the row's lock
        sa.Column("queue_id", sa.Text, sa.ForeignKey("queue_queues.id"), primary_key=True),
        sa.Column("day", sa.Text, primary_key=True),  # YYYY-MM-DD in the facility's time zone
        sa.Column("last_number", sa.Integer, nullable=False),
    )
    op.create_table(
        "queue_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("queue_id", sa.Text, sa.ForeignKey("queue_queues.id"), nullable=False),
        sa.Column("facility_id", sa.Text, nullable=False),
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("patient_key", sa.Text, nullable=True),
        sa.Column("abha", sa.Text, nullable=True),
        sa.Column("mobile", sa.Text, nullable=True),
        sa.Column("booking_id", sa.Text, nullable=True, unique=True),
        sa.Column("booking_hash", sa.Text, nullable=True),
        sa.Column("slot", sa.Text, nullable=True),
        sa.Column("place_ms", sa.BigInteger, nullable=False),
        sa.Column("issued_ms", sa.BigInteger, nullable=False),
        sa.Column("estimate_s", sa.Integer, nullable=True),
        sa.Column("called_ms", sa.BigInteger, nullable=True),
        sa.Column("wait_s", sa.Integer, nullable=True),
        sa.Column("calls", sa.Integer, nullable=False, server_default="0"),
        sa.Column("counter_id", sa.Text, nullable=True),
        sa.Column("finished_ms", sa.BigInteger, nullable=True),
        sa.Column("reminded_ms", sa.BigInteger, nullable=True),
        sa.Column("transferred_from", sa.Integer, nullable=True),
        sa.Column("transferred_to", sa.Integer, nullable=True),
        sa.UniqueConstraint("queue_id", "day", "number", name="queue_tokens_number"),
        sa.CheckConstraint("status IN ('waiting', 'called', 'skipped', 'completed', 'no_show', 'transferred')", name="queue_tokens_status"),
        sa.CheckConstraint("category IN ('priority', 'booked', 'walk_in')", name="queue_tokens_category"),
    )
    # one active token per patient, queue and day: the database refuses a duplicate even if the code let one through
    op.create_index("queue_tokens_one_per_patient", "queue_tokens", ["queue_id", "day", "patient_key"], unique=True,
                    sqlite_where=sa.text(f"patient_key IS NOT NULL AND {ACTIVE}"),
                    postgresql_where=sa.text(f"patient_key IS NOT NULL AND {ACTIVE}"))  # fmt: skip
    op.create_index("queue_tokens_queue_day_status", "queue_tokens", ["queue_id", "day", "status"])
    op.create_index("queue_tokens_facility_day", "queue_tokens", ["facility_id", "day"])
    op.create_table(
        "queue_calls",  # every call and recall: the board's history and the queue's call rate
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("queue_id", sa.Text, nullable=False),
        sa.Column("facility_id", sa.Text, nullable=False),
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("token_id", sa.Integer, sa.ForeignKey("queue_tokens.id"), nullable=False),
        sa.Column("counter_id", sa.Text, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("recall", sa.Boolean, nullable=False),
    )
    op.create_index("queue_calls_queue_day", "queue_calls", ["queue_id", "day", "at_ms"])
    op.create_index("queue_calls_facility_day", "queue_calls", ["facility_id", "day", "id"])
    op.create_table(
        "queue_credentials",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("facility_id", sa.Text, sa.ForeignKey("queue_facilities.id"), nullable=False),
        sa.Column("secret_hash", sa.Text, nullable=False, unique=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.CheckConstraint("kind IN ('kiosk', 'board')", name="queue_credentials_kind"),
    )


def downgrade() -> None:
    for table in ("queue_credentials", "queue_calls", "queue_tokens", "queue_day_numbers", "queue_queues", "queue_counters",
                  "queue_departments", "queue_facilities"):  # fmt: skip
        op.drop_table(table)
