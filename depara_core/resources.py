"""Files the library reads: its own data (``assets/``, shipped inside the wheel as
``depara_core/assets``) through :mod:`importlib.resources`, and files inside other installed
packages found without importing them.

>>> (asset_dir("taskonomy") / "all_affinities_16k.csv").is_file()
True
>>> package_file("json", "decoder.py").name
'decoder.py'
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
from importlib.resources import as_file, files
from pathlib import Path

__all__ = ["asset_dir", "package_file"]

_KEEP = contextlib.ExitStack()
atexit.register(_KEEP.close)


def asset_dir(*parts: str) -> Path:
    """A folder of the package data as a real path (extracted once if the package is zipped)."""
    resource = files("depara_core").joinpath("assets", *parts)
    if isinstance(resource, Path):
        return resource
    return _KEEP.enter_context(as_file(resource))


def package_file(package: str, relative: str) -> Path | None:
    """``relative`` inside the installed ``package``, found without importing it; None if absent."""
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if found is None:
        return None
    roots = list(found.submodule_search_locations or ([str(Path(found.origin).parent)] if found.origin else []))
    for root in roots:
        path = Path(root) / relative
        if path.exists():
            return path
    return None
