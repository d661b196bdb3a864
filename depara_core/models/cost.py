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

import torch

from depara_core.models.spec import LoadedModel, model_lock
from depara_core.probes.probeset import ProbeSet

__all__ = ["probe_seconds"]

_MEASURED: dict[tuple[str, ...], float] = {}


def probe_seconds(model: LoadedModel, probes: ProbeSet) -> float:
    """Seconds of one forward and backward pass on the first probe as the model sees it (after its
    preprocessing), the best of five; 0.0 when it cannot be measured (a forward that fails: the real
    run reports that failure). Measured once per architecture, preprocessing and probe size: the
    weights do not change the time, and models of one architecture then get the same share."""
    if not len(probes):
        return 0.0
    key = (model.architecture or model.digest, repr(model.spec.preprocess), str(probes.images.shape[1:]))
    if key not in _MEASURED:
        _MEASURED[key] = _measure(model, probes)
        while len(_MEASURED) > 1024:
            _MEASURED.pop(next(iter(_MEASURED)))
    return _MEASURED[key]


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
