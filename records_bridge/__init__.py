"""The records bridge and the lighter services it writes into.

The bridge follows the hub's outbox (``wire.outbox_events``) and turns each
event into writes for a FHIR R4 server and the services' calls. It imports
``wire`` and itself only, never ``ingest``.
"""
