"""What the person who starts the server allows a visitor of the web page to do.

A visitor is not the server's owner. By default nothing typed or uploaded runs code on the server
(``module:function`` models and TorchScript files are refused) and no server path is read. The
operator opts in with environment variables or with arguments after ``--``::

    DEPARA_ALLOW_CODE=1 DEPARA_ALLOWED_ROOTS=/data/probes streamlit run app.py
    streamlit run app.py -- --allow-code --allowed-root /data/probes

>>> ServerPolicy.from_sources({}, []).allow_code, ServerPolicy.from_sources({"DEPARA_ALLOW_CODE": "1"}, []).allow_code
(False, True)
>>> [p.name for p in ServerPolicy.from_sources({}, ["--allowed-root", "/tmp"]).allowed_roots]
['tmp']
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ServerPolicy", "ENABLE_CODE_HINT", "ENABLE_PATHS_HINT"]

ENABLE_CODE_HINT = "the person who runs the server can allow them by starting it with DEPARA_ALLOW_CODE=1 (or: streamlit run app.py -- --allow-code)"
ENABLE_PATHS_HINT = (
    "upload the images instead; the person who runs the server can allow folders with DEPARA_ALLOWED_ROOTS=/a/folder "
    "(or: streamlit run app.py -- --allowed-root /a/folder)"
)


@dataclass(frozen=True)
class ServerPolicy:
    """``allow_code``: code-defined models and TorchScript may be added from the page;
    ``allowed_roots``: the only server folders a typed path may lie under (resolved)."""

    allow_code: bool = False
    allowed_roots: tuple[Path, ...] = ()

    @classmethod
    def from_sources(cls, environ: Mapping[str, str], argv: Sequence[str]) -> ServerPolicy:
        """The policy from environment variables and the app's own command-line arguments."""
        parser = argparse.ArgumentParser(add_help=False)
        parser.add_argument("--allow-code", action="store_true")
        parser.add_argument("--allowed-root", action="append", default=[])
        args, _ = parser.parse_known_args(list(argv))
        allow = args.allow_code or environ.get("DEPARA_ALLOW_CODE", "0").strip().lower() in ("1", "true", "yes")
        raw = [p for p in environ.get("DEPARA_ALLOWED_ROOTS", "").split(os.pathsep) if p.strip()] + list(args.allowed_root)
        roots = tuple(dict.fromkeys(Path(p).expanduser().resolve() for p in raw))
        return cls(allow, roots)

    @classmethod
    def current(cls) -> ServerPolicy:
        import sys

        return cls.from_sources(os.environ, sys.argv[1:])

    def allows_path(self, resolved: Path) -> bool:
        """Whether an already resolved path lies under an allowed root."""
        return any(resolved == r or r in resolved.parents for r in self.allowed_roots)
