"""Alembic's entry point for the facility registry's migrations: the shared online runner of ``records_bridge.services.db``."""

from alembic import context

from records_bridge.services.db import run_migrations

run_migrations(context.config)
