"""A first build and forward of a code-defined model in a separate process, under a time limit.

``module:function`` models and TorchScript files run code nobody has checked. Run in the caller's
process, a builder or forward that calls ``os._exit``, crashes the interpreter or never returns
would end the command, or the web server for every visitor. :func:`trial_build` runs both once in
a child process first and turns what went wrong into a :class:`~depara_core.errors.ModelError`.
An exception from the builder is reported from the child (the builder does not run a second
time); one from the forward is left to the real run, which reports it with the probes' true size.

>>> trial_build("callable", "torch.nn:Identity", (8, 8), timeout=120)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from depara_core.errors import ModelError

__all__ = ["trial_build", "model_timeout", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 300.0
"""Seconds a code-defined model may take to build and run once (``$DEPARA_MODEL_TIMEOUT``)."""


def model_timeout() -> float:
    """The time limit in force: ``$DEPARA_MODEL_TIMEOUT`` seconds, else :data:`DEFAULT_TIMEOUT`."""
    raw = os.environ.get("DEPARA_MODEL_TIMEOUT", "").strip()
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        raise ModelError(f"DEPARA_MODEL_TIMEOUT={raw!r} is not a number of seconds", "set it to e.g. 300") from None
    return value if value > 0 else DEFAULT_TIMEOUT


def _describe_end(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"ended the process with exit status {code}"


def trial_build(kind: str, target: str, size: tuple[int, int] | None, timeout: float | None = None) -> None:
    """Build ``target`` (``module:function`` for ``kind="callable"``, a file for ``"torchscript"``) and
    run it once on two random probes of ``size`` (default 64x64), in a child process.

    Raises :class:`ModelError` if the child exits, crashes or outlives ``timeout`` seconds
    (default :func:`model_timeout`). The child sees the caller's import path and working folder.
    """
    key = _trial_key(kind, target, size)
    if key in _PASSED:
        return
    _run_trial(kind, target, size, model_timeout() if timeout is None else timeout)
    _PASSED.add(key)


_PASSED: set[tuple] = set()
"""Trials passed in this process. A module, once imported, is not read again by this process either;
a TorchScript file is tried again when its size or modification time changes."""


def _trial_key(kind: str, target: str, size: tuple[int, int] | None) -> tuple:
    stamp: tuple = ()
    if kind == "torchscript":
        try:
            st = os.stat(target)
            stamp = (st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = ("missing",)
    return (kind, target, size, stamp, tuple(sys.path))


def _run_trial(kind: str, target: str, size: tuple[int, int] | None, limit: float) -> None:
    shown = os.path.basename(target) if kind == "torchscript" else target
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    h, w = size or (64, 64)
    cmd = [sys.executable, "-c", "from depara_core.models.trial import _child; _child()", kind, target, str(h), str(w)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=limit, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ModelError(
            f"the model {shown!r} did not finish building and running once within {limit:.0f} s",
            "make sure its builder and forward return (a larger limit can be set with DEPARA_MODEL_TIMEOUT)",
        ) from None
    stages = [json.loads(line[len("@@trial ") :]) for line in proc.stdout.splitlines() if line.startswith("@@trial ")]
    if stages and stages[-1].get("stage") == "done":
        return
    if stages and stages[-1].get("stage") == "failed":
        last = stages[-1]
        if last["depara"]:
            raise ModelError(last["error"])
        raise ModelError(f"building the model {shown!r} failed: {last['error']}", "check the model's source")
    stage = "building" if not stages else "running"
    raise ModelError(
        f"{stage} the model {shown!r} {_describe_end(proc.returncode)} (its {'builder' if stage == 'building' else 'forward'} exits or crashes)",
        "fix the model's code: it must return an nn.Module, and its forward a tensor, without exiting",
    )


def _child() -> None:  # pragma: no cover - runs in the child process
    import torch

    kind, target, h, w = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

    def stage(name: str) -> None:
        print("@@trial " + json.dumps({"stage": name}), flush=True)

    try:
        if kind == "torchscript":
            try:
                module = torch.jit.load(target, map_location="cpu")
            except Exception:  # noqa: BLE001 - torch's own text names its internals, not the user's file
                from depara_core.errors import ModelError

                raise ModelError(f"{os.path.basename(target)!r} is not a TorchScript file, or it is damaged", "save the model with torch.jit.save(torch.jit.script(model), path)") from None
        else:
            from depara_core.models.sources import import_callable

            module = import_callable(target)()
    except Exception as exc:  # noqa: BLE001 - reported by the parent; the builder does not run again there
        from depara_core.errors import DeparaError

        text = str(exc) if isinstance(exc, DeparaError) else f"{type(exc).__name__}: {str(exc).strip()[:300]}"
        print("@@trial " + json.dumps({"stage": "failed", "error": text, "depara": isinstance(exc, DeparaError)}), flush=True)
        return
    stage("built")
    try:
        if isinstance(module, torch.nn.Module):
            module.eval()
            with torch.no_grad():
                module(torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(0)))
    except Exception:  # noqa: BLE001 - as above, for the real run
        pass
    stage("done")
