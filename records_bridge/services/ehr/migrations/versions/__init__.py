"""The EHR's schema revisions, oldest first."""
