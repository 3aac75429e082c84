"""Shared by the edge agent and the hub: wire messages, parameter vocabulary, codecs.

Imports neither ``edge_agent`` nor ``ingest``; both import it.
"""
