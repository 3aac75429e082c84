"""The records bridge, and the lighter records services it writes into (EHR, health locker, OPD queue, facility registry)."""
