"""What one probe costs a model, measured: the best of five timed forward and backward passes of
one probe (the work an attribution map does). Progress estimates weight each model's share of a
computation by it, so that a VGG next to a MobileNet gets its real share of the time left.

Measured rather than counted: operation counts (``FlopCounterMode``) miss what a probe costs
besides multiply-adds (hooks, input gradients, stored maps), which dominates on small networks;
in one run a MobileNet-V3 counted 29x fewer operations than a ResNet-18 but took a quarter of its time.

>>> from depara_core.models.toy import toy_models
>>> from depara_core.probes.registry import load_builtin
>>> probe_seconds(toy_models(1)[0], load_builtin("noise", 3)) > 0
True
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from depara_core.models.spec import LoadedModel, model_lock
from depara_core.probes.probeset import ProbeSet
from depara_core.units import format_duration

__all__ = ["probe_seconds", "record_run", "CostEstimate", "estimate_seconds"]

_MEASURED: dict[tuple[str, ...], float] = {}
_RUNS: dict[tuple[str, ...], float] = {}
"""Seconds per probe pass measured in real (batched) runs of this process, by the same key as ``_MEASURED``."""


def _key(model: LoadedModel, probes: ProbeSet) -> tuple[str, ...]:
    return (model.architecture or model.digest, repr(model.spec.preprocess), str(probes.images.shape[1:]))


def _remember(store: dict, key: tuple[str, ...], value: float) -> None:
    store[key] = value
    while len(store) > 1024:
        store.pop(next(iter(store)))


def probe_seconds(model: LoadedModel, probes: ProbeSet) -> float:
    """Seconds of one forward and backward pass on the first probe as the model sees it (after its
    preprocessing), the best of five; 0.0 when it cannot be measured (a forward that fails: the real
    run reports that failure). Measured once per architecture, preprocessing and probe size: the
    weights do not change the time, and models of one architecture then get the same share."""
    if not len(probes):
        return 0.0
    key = _key(model, probes)
    if key not in _MEASURED:
        _remember(_MEASURED, key, _measure(model, probes))
    return _MEASURED[key]


def record_run(model: LoadedModel, probes: ProbeSet, passes: int, seconds: float) -> None:
    """Note that ``passes`` probe passes (probes x layers x the method's passes per probe) of ``model``
    took ``seconds`` in a real run; :func:`estimate_seconds` prefers such figures (the latest one)."""
    if passes > 0 and seconds > 0:
        _remember(_RUNS, _key(model, probes), seconds / passes)


@dataclass(frozen=True)
class CostEstimate:
    """Estimated seconds of a computation; ``measured``: every model's figure comes from a real run
    here (else some come from timing one probe alone, which overestimates a batched run)."""

    seconds: float
    measured: bool

    def text(self) -> str:
        """E.g. "about 34 s" or "at most about 1 min 24 s"."""
        amount = format_duration(self.seconds)
        return f"about {amount}" if self.measured else f"at most about {amount}"


def estimate_seconds(work: list[tuple[LoadedModel, int]], probes: ProbeSet) -> CostEstimate:
    """Seconds of ``work`` — per model, the probe passes it needs over ``probes`` (probes x layers x
    passes per probe) — from this process's real runs of the same architecture, else from
    :func:`probe_seconds` (one probe at a time, an upper estimate).

    >>> from depara_core.models.toy import toy_models
    >>> from depara_core.probes.registry import load_builtin
    >>> net, probes = toy_models(1)[0], load_builtin("noise", 4)
    >>> record_run(net, probes, passes=8, seconds=2.0)
    >>> estimate_seconds([(net, 16)], probes)
    CostEstimate(seconds=4.0, measured=True)
    """
    total, measured = 0.0, True
    for model, passes in work:
        if passes <= 0:
            continue
        per_pass = _RUNS.get(_key(model, probes))
        if per_pass is None:
            per_pass, measured = probe_seconds(model, probes), False
        total += passes * per_pass
    return CostEstimate(total, measured)


def _first_tensor(out: object) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    values = out.values() if isinstance(out, dict) else out if isinstance(out, (tuple, list)) else ()
    return next((t for t in (_first_tensor(v) for v in values) if t is not None), None)


def _measure(model: LoadedModel, probes: ProbeSet) -> float:
    module = model.module
    device = model.device
    best = float("inf")
    try:
        x = model.spec.preprocess(probes.images[:1]).to(device)
        with model_lock(module):
            for _ in range(5):  # the first passes also pay for one-time set-up; the best is the least disturbed
                start = time.perf_counter()
                xi = x.detach().requires_grad_(True)
                out = _first_tensor(module(xi))
                if out is not None and out.requires_grad:
                    out.float().square().sum().backward()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                best = min(best, time.perf_counter() - start)
    except Exception:  # noqa: BLE001 -- only an estimate; the real run reports the model's error
        return 0.0
    return best
