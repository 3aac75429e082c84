"""The KPI store's first schema: the hub events seen, and the facts taken from them (encounters, transfers, alarms and
their acknowledgements, NEWS2 band changes, hourly sample counts), with the indexes the KPI queries use.

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


def upgrade() -> None:
    op.create_table(
        "kpi_events",  # every (hub, event id) taken: a retried batch adds nothing
        sa.Column("hub", sa.Text, primary_key=True),
        sa.Column("event_id", sa.BigInteger, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("received", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "kpi_encounters",
        sa.Column("hub", sa.Text, primary_key=True),
        sa.Column("encounter_id", sa.Text, primary_key=True),
        sa.Column("patient_id", sa.Text, nullable=False),
        sa.Column("mrn", sa.Text, nullable=True),
        sa.Column("abha", sa.Text, nullable=True),
        sa.Column("facility_id", sa.Text, nullable=True),
        sa.Column("ward", sa.Text, nullable=False),
        sa.Column("bed", sa.Text, nullable=False),
        sa.Column("start_ms", sa.BigInteger, nullable=False),
        sa.Column("end_ms", sa.BigInteger, nullable=True),
        sa.Column("outcome", sa.Text, nullable=True),
        sa.Column("cancelled", sa.Boolean, nullable=False),
        sa.Column("last_event", sa.BigInteger, nullable=False),  # the newest event the row is from: an older one never overwrites it
    )
    op.create_index("kpi_encounters_facility", "kpi_encounters", ["facility_id", "start_ms"])
    op.create_index("kpi_encounters_facility_end", "kpi_encounters", ["facility_id", "end_ms"])
    op.create_index("kpi_encounters_mrn", "kpi_encounters", ["hub", "mrn", "start_ms"])
    op.create_index("kpi_encounters_abha", "kpi_encounters", ["hub", "abha", "start_ms"])
    op.create_index("kpi_encounters_patient", "kpi_encounters", ["hub", "patient_id", "start_ms"])
    op.create_table(
        "kpi_transfers",
        sa.Column("hub", sa.Text, primary_key=True),
        sa.Column("event_id", sa.BigInteger, primary_key=True),
        sa.Column("encounter_id", sa.Text, nullable=False),
        sa.Column("t", sa.BigInteger, nullable=False),
        sa.Column("from_bed", sa.Text, nullable=False),
        sa.Column("to_bed", sa.Text, nullable=False),
        sa.Column("ward", sa.Text, nullable=False),
    )
    op.create_index("kpi_transfers_encounter", "kpi_transfers", ["hub", "encounter_id", "t"])
    op.create_table(
        "kpi_alarms",
        sa.Column("hub", sa.Text, primary_key=True),
        sa.Column("alarm_id", sa.Text, primary_key=True),
        sa.Column("encounter_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("priority", sa.Text, nullable=False),
        sa.Column("raised", sa.BigInteger, nullable=False),
        sa.Column("acknowledged", sa.BigInteger, nullable=True),  # the first acknowledgement
        sa.Column("acknowledged_by", sa.Text, nullable=True),
        sa.Column("resolved", sa.BigInteger, nullable=True),
    )
    # covering: the alarm queries read no table row
    op.create_index("kpi_alarms_encounter", "kpi_alarms", ["hub", "encounter_id", "raised", "category", "kind", "acknowledged"])
    op.create_table(
        "kpi_alarm_acks",  # every acknowledgement (an alarm whose priority rose is acknowledged again)
        sa.Column("hub", sa.Text, primary_key=True),
        sa.Column("event_id", sa.BigInteger, primary_key=True),
        sa.Column("alarm_id", sa.Text, nullable=False),
        sa.Column("encounter_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("t", sa.BigInteger, nullable=False),
        sa.Column("ack_by", sa.Text, nullable=True),
    )
    op.create_index("kpi_alarm_acks_encounter", "kpi_alarm_acks", ["hub", "encounter_id", "kind", "t"])
    op.create_table(
        "kpi_news2",
        sa.Column("hub", sa.Text, primary_key=True),
        sa.Column("event_id", sa.BigInteger, primary_key=True),
        sa.Column("encounter_id", sa.Text, nullable=False),
        sa.Column("t", sa.BigInteger, nullable=False),
        sa.Column("band", sa.Text, nullable=False),
        sa.Column("total", sa.Integer, nullable=True),
    )
    op.create_index("kpi_news2_encounter", "kpi_news2", ["hub", "encounter_id", "t"])
    op.create_table(
        "kpi_hourly",
        sa.Column("hub", sa.Text, primary_key=True),
        sa.Column("encounter_id", sa.Text, primary_key=True),
        sa.Column("param", sa.Text, primary_key=True),  # before the hour: a query reads only the parameters it counts
        sa.Column("hour", sa.BigInteger, primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sqlite_with_rowid=False,  # the rows live in the key's order: an encounter's hours of a parameter are one range
    )


def downgrade() -> None:
    for name in ("kpi_hourly", "kpi_news2", "kpi_alarm_acks", "kpi_alarms", "kpi_transfers", "kpi_encounters", "kpi_events"):
        op.drop_table(name)
