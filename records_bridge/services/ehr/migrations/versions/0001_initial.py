"""The EHR's first schema: resources, their versions, the search index and the API clients.

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
        "ehr_resources",
        sa.Column("row_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("last_updated", sa.Text, nullable=False),  # FHIR instant, UTC: 2024-05-01T10:00:00.123456Z
        sa.Column("content", sa.Text, nullable=False),  # the resource's JSON, meta included
        sa.UniqueConstraint("type", "id", name="ehr_resources_type_id"),
    )
    op.create_index("ehr_resources_type_row", "ehr_resources", ["type", "row_id"])
    op.create_table(
        "ehr_history",
        sa.Column("history_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("last_updated", sa.Text, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.UniqueConstraint("type", "id", "version_id", name="ehr_history_version"),
    )
    op.create_table(
        "ehr_search",
        sa.Column("row_id", sa.Integer, sa.ForeignKey("ehr_resources.row_id", ondelete="CASCADE"), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("param", sa.Text, nullable=False),  # patient, encounter, code, identifier, date
        sa.Column("system", sa.Text, nullable=True),  # code and identifier: the system, when there is one
        sa.Column("value", sa.Text, nullable=True),  # references as Type/id; codes and identifiers as given
        sa.Column("lo", sa.BigInteger, nullable=True),  # date: the value's range in µs since the epoch, [lo, hi)
        sa.Column("hi", sa.BigInteger, nullable=True),
    )
    op.create_index("ehr_search_token", "ehr_search", ["type", "param", "value", "system", "row_id"])
    op.create_index("ehr_search_date", "ehr_search", ["type", "param", "lo", "hi", "row_id"])
    op.create_index("ehr_search_row", "ehr_search", ["row_id", "param"])
    op.create_table(
        "ehr_clients",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("secret_hash", sa.Text, nullable=False, unique=True),
        sa.Column("created", sa.Text, nullable=False),
        sa.CheckConstraint("role IN ('writer', 'reader')", name="ehr_clients_role"),
    )


def downgrade() -> None:
    for table in ("ehr_clients", "ehr_search", "ehr_history", "ehr_resources"):
        op.drop_table(table)
