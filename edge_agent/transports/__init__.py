"""edge_agent/transports"""
