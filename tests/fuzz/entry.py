"""The public entry points the corpus feeds: the command line (as a user runs it) and the app's session layer."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
from pathlib import Path

from depara_core.errors import DeparaError

__all__ = ["cli", "module_dir", "write_module"]


def cli(*argv: str) -> str:
    """Run ``python -m depara_core ARGV`` in process. Status 2 with a message becomes a
    :class:`DeparaError` carrying it (what the user reads); status 0 returns standard output."""
    from depara_core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code
    if code == 2 and err.getvalue().strip():
        raise DeparaError(err.getvalue().strip().splitlines()[-1])
    if code != 0:
        raise RuntimeError(f"the command ended with status {code!r} and said: {err.getvalue()[-500:]!r}")
    if "Traceback" in err.getvalue():
        raise RuntimeError(err.getvalue())
    return out.getvalue()


def module_dir() -> Path:
    """A folder on the workers' import path, for the corpus's user-written model modules."""
    folder = Path(os.environ["FUZZ_SCRATCH"]) / "modules"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_module(name: str, code: str) -> str:
    """Write ``code`` as module ``name`` on the import path and return the name."""
    path = module_dir() / f"{name}.py"
    if not path.is_file() or path.read_text() != code:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(code)
        os.replace(tmp, path)  # two workers may write the same module at once: never half a file
    importlib.invalidate_caches()
    return name
