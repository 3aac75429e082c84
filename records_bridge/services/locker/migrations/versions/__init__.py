"""The locker's schema revisions."""
