"""The last results a session's start showed, kept so that a restarted app draws them at once.

A restarted server spends seconds importing the engine and building the zoo's models before it can
read its results from the cache. The start page's terms are also kept here under the address a
session starts from (its query parameters, and the environment that sets a new session's
choices); a new session reads them without importing torch and shows them, marked as the last
results, until the checked ones replace them.

>>> import tempfile, numpy as np
>>> from depara_core.compare.terms import SimilarityTerms
>>> root, key = tempfile.mkdtemp(), start_key({}, {})
>>> save_snapshot(root, key, SimilarityTerms(("a", "b"), np.eye(2), np.eye(2)), lam=0.5, method="DEPARA", label="2 models", digest="d1")
>>> snap = load_snapshot(root, key)
>>> snap.terms.names, snap.lam, snap.label, load_snapshot(root, start_key({"lam": "2"}, {})) is None
(('a', 'b'), 0.5, '2 models', True)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from depara_core.compare.terms import SimilarityTerms
from depara_core.errors import DeparaError
from depara_core.store import entry_path, read_entry, write_entry

__all__ = ["Snapshot", "start_key", "save_snapshot", "load_snapshot", "START_ENVIRONMENT", "MAX_KEPT"]

START_ENVIRONMENT = ("DEPARA_PROBE_COUNT",)
"""Environment variables that change what a new session starts with."""
MAX_KEPT = 16
"""Starts whose last results are kept (the most recent ones)."""


@dataclass(frozen=True)
class Snapshot:
    """Terms as a start page last showed them, with the λ and method it showed them at."""

    terms: SimilarityTerms = field(repr=False)
    lam: float
    method: str
    label: str
    saved: str
    digest: str


def start_key(params: Mapping[str, str], environ: Mapping[str, str] = os.environ) -> str:
    """The key of a session's start: its address's query parameters and :data:`START_ENVIRONMENT`.

    >>> start_key({"a": "1", "b": "2"}, {}) == start_key({"b": "2", "a": "1"}, {}) != start_key({}, {"DEPARA_PROBE_COUNT": "8"})
    True
    """
    payload = {"params": sorted((str(k), str(v)) for k, v in params.items()), "environment": [environ.get(name, "") for name in START_ENVIRONMENT]}
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


def save_snapshot(root: str | os.PathLike, key: str, terms: SimilarityTerms, *, lam: float, method: str, label: str, digest: str) -> None:
    """Keep ``terms`` (whose :func:`~depara_core.session.workspace.terms_digest` is ``digest``) as the start ``key``'s last results.

    Only the :data:`MAX_KEPT` most recently kept starts stay: visitors can open as many addresses as
    they like, and none of them may fill the server's disk.
    """
    arrays, meta = terms.to_entry()
    saved = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_entry(entry_path(root, "start", key), arrays, {**meta, "view": {"lam": float(lam), "method": method, "label": label, "saved": saved, "digest": digest}})
    kept = sorted(Path(root, "start").glob("*/*.npz"), key=_mtime, reverse=True)
    for old in kept[MAX_KEPT:]:
        old.unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed meanwhile by another session's pruning
        return 0.0


def load_snapshot(root: str | os.PathLike, key: str) -> Snapshot | None:
    """The start ``key``'s last results, or None (never kept, or unreadable)."""
    hit = read_entry(entry_path(root, "start", key))
    if hit is None:
        return None
    arrays, meta = hit
    n = len(meta.get("names", []))
    if n < 2 or any(a.shape != (n, n) or not np.isfinite(a).all() for a in arrays.values()):
        return None  # not a zoo's terms: nothing to show
    try:
        view = meta["view"]
        return Snapshot(SimilarityTerms.from_entry(arrays, meta), float(view["lam"]), str(view["method"]), str(view["label"]), str(view["saved"]), str(view["digest"]))
    except (KeyError, TypeError, ValueError, DeparaError):
        return None  # written by another version: the checked results follow anyway
