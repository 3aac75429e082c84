"""The locker's Alembic scripts, shipped in the package; run them with ``records_bridge.services.locker.store.migrate``."""
