"""The lighter records services (the EHR, and later the locker, queue and facility registry): small FastAPI apps over SQLAlchemy."""
