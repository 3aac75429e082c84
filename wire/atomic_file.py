"""Writing a file whole or not at all: a temp file beside it, fsynced, then renamed over it.

One place for every file another process watches for and reads as soon as it
appears (the simulators' edge config, the demo's credentials, an agent's secret):
a reader sees the old file or the new one, never a half-written one. ``mode`` is
set before the first byte is written, so a secret is never readable by others.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
