"""The one atomic file write: a uniquely named temporary file in the target's folder, flushed to
disk and renamed into place, so that a reader never sees a partial file and a writer killed
mid-write leaves no readable broken entry (its temporary file starts with ``.`` and ends in ``.tmp``).

>>> import tempfile, pathlib
>>> p = atomic_write(pathlib.Path(tempfile.mkdtemp()) / "a.txt", b"hello")
>>> p.read_bytes()
b'hello'
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "remove_stale_temporaries", "TEMP_SUFFIX", "STALE_AFTER"]

TEMP_SUFFIX = ".tmp"
STALE_AFTER = 3600.0
"""Seconds after which a temporary file is taken to belong to a writer that was killed."""


def atomic_write(path: str | os.PathLike, data: bytes | Callable[[BinaryIO], None], mode: int | None = None) -> Path:
    """Write ``data`` (bytes, or a function writing into a binary file) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:24]}.", suffix=TEMP_SUFFIX, dir=path.parent)  # unique per writer and thread
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, (bytes, bytearray, memoryview)):
                fh.write(data)
            else:
                data(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_stale_temporaries(root: str | os.PathLike, older_than: float = STALE_AFTER, now: float | None = None) -> int:
    """Remove the temporary files of killed writers under ``root`` (``.*.tmp``, unchanged for
    ``older_than`` seconds); returns how many. A live writer's file is younger and is kept."""
    import time

    limit = (time.time() if now is None else now) - older_than
    removed = 0
    for p in Path(root).rglob(f".*{TEMP_SUFFIX}"):
        try:
            if p.is_file() and p.stat().st_mtime < limit:
                p.unlink()
                removed += 1
        except OSError:  # another process removed or renamed it first
            continue
    return removed
