"""The clinicians' web console: static files served by the hub at ``/``."""

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
