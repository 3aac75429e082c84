"""edge_agent/drivers"""
