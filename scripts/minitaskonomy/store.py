"""Writing a built mini-taskonomy zoo: weights (float16 safetensors), manifests (atomic JSON)
and the code version a build was made with."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import torch
from safetensors.torch import save_file

from depara_core.atomic import atomic_write

__all__ = ["save_weights", "write_json", "file_sha256", "code_version"]

ROOT = Path(__file__).resolve().parents[2]


def save_weights(net: torch.nn.Module, path: str | Path) -> dict:
    """Save ``net``'s state_dict with floating tensors as float16; returns size and SHA-256."""
    state = {k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous() for k, v in net.state_dict().items()}
    path = Path(path)
    save_file(state, str(path))
    path.chmod(0o644)
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def write_json(path: str | Path, data: dict) -> None:
    """Write JSON atomically (see :func:`depara_core.atomic.atomic_write`)."""
    atomic_write(path, (json.dumps(data, indent=1, sort_keys=False) + "\n").encode())


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def code_version() -> dict:
    """The git commit of the code, whether the tree had uncommitted changes, and a digest of the build's sources.

    ``sources_sha256`` hashes the files that determine a build (the zoo's runtime package, this build
    package, the scene generator and the build scripts), so that a build can be matched to code
    committed after it ran.
    """
    root = ROOT
    files = sorted((root / "depara_core" / "zoos" / "minitaskonomy").glob("*.py")) + sorted(Path(__file__).resolve().parent.glob("*.py"))
    files += [root / "depara_core" / "probes" / "scenes.py", root / "depara_core" / "probes" / "scene_geometry.py"]
    files += sorted((root / "scripts").glob("build_*.py"))
    h = hashlib.sha256()
    for f in files:
        if f.is_file():
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    out: dict = {"commit": None, "dirty": None, "sources_sha256": h.hexdigest()}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "depara_core", "scripts"], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return out
    if commit:
        out.update(commit=commit, dirty=bool(dirty))
    return out
