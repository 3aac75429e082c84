"""The EHR's Alembic scripts, shipped in the package; run them with ``records_bridge.services.ehr.store.migrate``."""
