"""The registry's first schema: facilities (the HFR fields, verification), their services (for the service filter),
capacity per bed type (licensed and staffed, each figure with who changed it and when) and the latest ICU occupancy
each facility's hub reported.

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
        "facility_facilities",
        sa.Column("facility_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("ownership", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("state_lgd", sa.Integer, nullable=False),
        sa.Column("district", sa.Text, nullable=False),
        sa.Column("district_key", sa.Text, nullable=False),  # the district's name folded to lower case, for the filter
        sa.Column("district_lgd", sa.Integer, nullable=False),
        sa.Column("subdistrict", sa.Text, nullable=True),
        sa.Column("subdistrict_lgd", sa.Integer, nullable=True),
        sa.Column("address", sa.Text, nullable=True),
        sa.Column("pincode", sa.Text, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("specialities", sa.Text, nullable=False),  # a JSON list of codes
        sa.Column("services", sa.Text, nullable=False),  # a JSON list of codes (also rows of facility_services)
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("phone", sa.Text, nullable=True),
        sa.Column("email", sa.Text, nullable=True),
        sa.Column("verified", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("verified_by", sa.Text, nullable=True),
        sa.Column("verified_ms", sa.BigInteger, nullable=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
    )
    op.create_index("facility_facilities_lat_lon", "facility_facilities", ["lat", "lon"])
    op.create_index("facility_facilities_district_lgd", "facility_facilities", ["district_lgd"])
    op.create_index("facility_facilities_district_key", "facility_facilities", ["district_key"])
    op.create_index("facility_facilities_type", "facility_facilities", ["type"])
    op.create_table(
        "facility_services",
        sa.Column("facility_id", sa.Text, sa.ForeignKey("facility_facilities.facility_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("service", sa.Text, primary_key=True),
    )
    op.create_index("facility_services_service", "facility_services", ["service", "facility_id"])
    op.create_table(
        "facility_capacity",
        sa.Column("facility_id", sa.Text, sa.ForeignKey("facility_facilities.facility_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("bed_type", sa.Text, primary_key=True),
        sa.Column("licensed", sa.Integer, nullable=False),
        sa.Column("staffed", sa.Integer, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.CheckConstraint("staffed >= 0 AND licensed >= 0 AND staffed <= licensed", name="facility_capacity_staffed_le_licensed"),
    )
    op.create_table(
        "facility_occupancy",
        sa.Column("facility_id", sa.Text, sa.ForeignKey("facility_facilities.facility_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("as_of_ms", sa.BigInteger, nullable=False),  # when the hub took its census
        sa.Column("icu_beds", sa.Integer, nullable=False),
        sa.Column("occupied", sa.Integer, nullable=False),
        sa.Column("free", sa.Integer, nullable=False),
        sa.Column("news2_high", sa.Integer, nullable=False),
        sa.Column("monitors_offline", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),  # the hub's id
        sa.Column("received_ms", sa.BigInteger, nullable=False),
        sa.Column("received_by", sa.Text, nullable=False),  # the hub user the records bridge signed in as
        sa.CheckConstraint("occupied + free = icu_beds", name="facility_occupancy_adds_up"),
    )
    op.create_index("facility_occupancy_free", "facility_occupancy", ["free", "as_of_ms"])


def downgrade() -> None:
    for t in ("facility_occupancy", "facility_capacity", "facility_services", "facility_facilities"):
        op.drop_table(t)
