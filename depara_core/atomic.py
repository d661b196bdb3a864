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

__all__ = ["atomic_write", "TEMP_SUFFIX"]

TEMP_SUFFIX = ".tmp"


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
