"""Probes and files that come from the web page: uploads and server paths, checked."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

from depara_core.atomic import atomic_write
from depara_core.errors import DeparaError, ProbeError
from depara_core.probes.probeset import IMAGE_SUFFIXES, ProbeSet, ProbeWarning
from depara_core.probes.registry import load_builtin
from depara_core.session.config import ProbeChoice
from depara_core.session.policy import ENABLE_PATHS_HINT, ServerPolicy

__all__ = ['load_probes', 'probes_from_upload', 'check_path', 'probes_from_path', 'save_upload', 'stored_upload']


# ---- probes --------------------------------------------------------------------------------
def load_probes(
    choice: ProbeChoice, uploaded: Mapping[str, ProbeSet] | None = None, builtin: Callable[[str, int | None], ProbeSet] = load_builtin
) -> ProbeSet:
    """The probe set of ``choice``: a built-in one (through ``builtin``, e.g. a memoised
    :func:`~depara_core.probes.registry.load_builtin`), or one of ``uploaded`` (keyed by digest)."""
    if choice.source == "builtin":
        return builtin(choice.name, choice.count)
    found = (uploaded or {}).get(choice.digest)
    if found is None:
        raise ProbeError(f"the uploaded probe set {choice.name!r} is no longer in this session", "upload it again on the Setup page")
    return found.subset(choice.count) if choice.count and choice.count < len(found) else found


def probes_from_upload(files: Sequence[tuple[str, bytes]], size: int | None = 224, name: str = "") -> ProbeSet:
    """Probes from uploaded files: image files, or one or more zip archives of images (guarded)."""
    if not files:
        raise ProbeError("no files were uploaded", "choose image files or a .zip of images")
    hw = (size, size) if size else None
    files = _distinct_names(files)
    zips = [(n, b) for n, b in files if n.lower().endswith(".zip")]
    images = {n: b for n, b in files if not n.lower().endswith(".zip")}
    bad = [n for n in images if not n.lower().endswith(IMAGE_SUFFIXES)]
    if bad:
        raise ProbeError(f"not an image or zip file: {', '.join(bad[:3])}", f"upload images ({', '.join(IMAGE_SUFFIXES)}) or a .zip of them")
    sets = [ProbeSet.from_zip(b, size=hw, name=Path(n).stem) for n, b in zips]
    if images:
        sets.append(ProbeSet.from_bytes(images, size=hw, name=name or "uploaded"))
    if len(sets) == 1:
        return dataclasses.replace(sets[0], name=name or sets[0].name, digest="") if name else sets[0]
    return ProbeSet.concat(sets, name or "uploaded")


def _distinct_names(files: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Uploaded files with distinct names: a repeated name gets `` (2)``, `` (3)``… before its suffix,
    with a warning, so that no upload silently replaces another."""
    seen: dict[str, int] = {}
    out = []
    for name, data in files:
        count = seen[name] = seen.get(name, 0) + 1
        if count > 1:
            stem, dot, ext = name.rpartition(".")
            renamed = f"{stem} ({count}).{ext}" if dot else f"{name} ({count})"
            warnings.warn(f"{count} uploads are named {name!r}; the repeat is kept as {renamed!r}", ProbeWarning, stacklevel=3)
            name = renamed
        out.append((name, data))
    return out


def check_path(path: str, kind: Literal["file", "folder"] = "folder", policy: ServerPolicy | None = None) -> Path:
    """A server path typed on the web page, checked against the server's policy: refused unless the
    operator allowed folders; resolved (symbolic links included) before the check; and it must be an
    existing, readable file or folder under one of them. Messages name only what the user typed."""
    policy = ServerPolicy.current() if policy is None else policy
    if not path or not path.strip():
        raise DeparaError(f"no {kind} path was given", f"type the path of a {kind} on the server")
    shown = Path(path.strip()).name or path.strip()
    if not policy.allowed_roots:
        raise DeparaError("this server does not read folders or files named on the web page", ENABLE_PATHS_HINT)
    roots = ", ".join(map(str, policy.allowed_roots))
    try:
        resolved = Path(path.strip()).expanduser().resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # ValueError: a NUL byte in the path
        resolved = None
    if resolved is None or not policy.allows_path(resolved):  # one answer: nothing outside the roots is revealed
        raise DeparaError(f"{shown!r} is not a {kind} under the folders this server may read", f"use a path under {roots}")
    if kind == "folder" and not resolved.is_dir():
        raise DeparaError(f"{shown!r} is not a folder", "give the folder that holds the images")
    if kind == "file" and not resolved.is_file():
        raise DeparaError(f"{shown!r} is not a file", "give the path of a file")
    if not os.access(resolved, os.R_OK):
        raise DeparaError(f"{shown!r} cannot be read by the server", "check its permissions")
    return resolved


def probes_from_path(path: str, size: int | None = 224, policy: ServerPolicy | None = None) -> ProbeSet:
    """Probes from a folder (recursively, confined to it) or a .zip file on the server, after :func:`check_path`."""
    p = Path(path.strip()).expanduser() if path else Path()
    hw = (size, size) if size else None
    return ProbeSet.from_path(check_path(path, "file" if p.suffix.lower() == ".zip" else "folder", policy), size=hw, confine=True)


UPLOADS_CAP = 4 * 2**30
"""Bytes of stored uploads kept (``$DEPARA_UPLOADS_CAP``); the least recently used go first."""


@contextlib.contextmanager
def stored_upload(data: bytes | None, suffix: str, root: str | os.PathLike) -> Iterator[Path | None]:
    """:func:`save_upload` for the ``with`` block that uses the file: when the block fails (the
    checkpoint is refused, say), a file this call stored is removed again. ``data=None`` yields None."""
    if data is None:
        yield None
        return
    existed = _upload_path(data, suffix, root).is_file()
    path = save_upload(data, suffix, root)
    try:
        yield path
    except BaseException:
        if not existed:  # a file that was there before belongs to another session's model
            path.unlink(missing_ok=True)
        raise


def _upload_path(data: bytes, suffix: str, root: str | os.PathLike) -> Path:
    """Where :func:`save_upload` stores ``data``: its content digest and a sanitised suffix under ``root/uploads``."""
    safe_suffix = "".join(ch for ch in suffix.lower() if ch.isalnum() or ch == ".")[:16]
    return Path(root) / "uploads" / f"{hashlib.sha256(data).hexdigest()}{safe_suffix}"


def save_upload(data: bytes, suffix: str, root: str | os.PathLike, cap: int | None = None) -> Path:
    """Store uploaded bytes content-addressed under ``root/uploads`` (atomic) and return the path.

    The folder is kept under ``cap`` bytes: the least recently used uploads (by modification
    time, refreshed on reuse) are removed, never the one just stored.
    """
    path = _upload_path(data, suffix, root)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        atomic_write(path, data)
    else:
        os.utime(path)
    limit = cap if cap is not None else int(os.environ.get("DEPARA_UPLOADS_CAP") or UPLOADS_CAP)
    stored = sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")), key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in stored)
    for old in stored:
        if total <= limit:
            break
        if old != path:
            total -= old.stat().st_size
            old.unlink(missing_ok=True)
    return path
