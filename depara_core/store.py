"""Entries on disk: arrays with a JSON header in one ``.npz`` file, written atomically and read
without pickles; the cache (:mod:`depara_core.cache`) and the app's start snapshot keep theirs so.
No torch here: the app reads its last results through this before the engine is imported.

>>> import tempfile, numpy as np
>>> path = entry_path(tempfile.mkdtemp(), "terms", "ab12")
>>> write_entry(path, {"x": np.arange(3)}, {"names": ["a"]})
>>> arrays, meta = read_entry(path)
>>> arrays["x"].tolist(), meta
([0, 1, 2], {'names': ['a']})
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from depara_core.atomic import atomic_write

__all__ = ["default_cache_dir", "entry_path", "write_entry", "read_entry", "CacheWriteWarning"]


def default_cache_dir() -> Path:
    """``$DEPARA_CACHE_DIR``, else ``~/.cache/depara-explorer``."""
    return Path(os.environ.get("DEPARA_CACHE_DIR") or Path.home() / ".cache" / "depara-explorer")


class CacheWriteWarning(UserWarning):
    """An entry could not be written (the folder was removed or is full); the result is still returned."""


def entry_path(root: str | os.PathLike, kind: str, key: str) -> Path:
    """Where the entry ``key`` of ``kind`` (graphs, terms, …) lives under ``root``."""
    return Path(root) / kind / key[:2] / f"{key}.npz"


def write_entry(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write one entry; when the folder vanishes meanwhile (the cache was cleared or removed) try
    once more, and when it still cannot be written warn and go on: a cache is optional."""
    for attempt in (1, 2):
        try:
            atomic_write(path, lambda fh: np.savez(fh, __meta__=np.array(json.dumps(meta)), **arrays))
            return
        except FileNotFoundError:
            if attempt == 2:
                break
        except OSError as exc:
            warnings.warn(f"could not write the cache entry {path.name} ({exc.strerror or exc})", CacheWriteWarning, stacklevel=3)
            return
    warnings.warn(f"could not write the cache entry {path.name}: its folder was removed meanwhile", CacheWriteWarning, stacklevel=3)


def read_entry(path: Path) -> tuple[dict[str, np.ndarray], dict] | None:
    """The arrays and header of the entry at ``path``; None when it is missing or unreadable (an
    unreadable one is removed, so that it is recomputed)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(str(arrays.pop("__meta__")))
        return arrays, meta
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError):
        path.unlink(missing_ok=True)
        return None
