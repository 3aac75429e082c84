"""The KPI store's Alembic revisions."""
