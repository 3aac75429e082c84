"""Where the repository's data folders are (``config/``), for code running from a checkout or editable install."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"
