"""Patients and encounters in the hub: who lies in which bed, from when to when, and how the stay ended."""
