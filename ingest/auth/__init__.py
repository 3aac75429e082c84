"""Identity and access for the hub: who is signed in, what each role may do where, and the tamper-evident audit log.

The hub is the system's identity provider: clinicians sign in to it, edge agents
present their secrets to it, and every route checks role and ward scope on the
server through one dependency per router (``ingest.auth.guards``).
"""
