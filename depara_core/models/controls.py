"""Sanity-check controls: a model's own architecture with freshly drawn weights.

An untrained twin shows how much of a similarity comes from the architecture alone (the
receptive fields, strides and normalisations that shape attribution maps and features even
without training). A source that ranks no better than its untrained twin has learnt nothing
that DEPARA can see.

>>> import torch
>>> from depara_core.models.sources import callable_spec
>>> from depara_core.models.spec import load_model
>>> base = callable_spec("net", lambda: torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()))
>>> ctrl = untrained_spec(base)
>>> ctrl.name, load_model(ctrl).digest != load_model(base).digest
('net@untrained', True)
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from depara_core.errors import ModelError

if TYPE_CHECKING:  # torch is imported when a control is built, so that names and labels need none
    from torch import nn

    from depara_core.models.spec import ModelSpec

__all__ = ["UNTRAINED_SUFFIX", "untrained_spec", "reinitialise"]

UNTRAINED_SUFFIX = "@untrained"


def reinitialise(module: nn.Module, seed: int = 0) -> nn.Module:
    """Draw every parameter of ``module`` afresh, in place, reproducibly from ``seed``.

    Submodules with ``reset_parameters`` (convolutions, linear layers, normalisations, which also
    reset running statistics) use their own initialiser, as at construction. Parameters that no
    such submodule owns (e.g. a layer scale or position embedding held directly) are redrawn from
    a normal distribution with their trained standard deviation, so that their scale stays sensible.
    """
    import torch

    if isinstance(module, torch.jit.ScriptModule):
        raise ModelError("a TorchScript model cannot be re-initialised", "add the model as torchvision/timm/module:function to get an untrained control")
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        owned: set[int] = set()
        for sub in module.modules():
            reset = getattr(sub, "reset_parameters", None)
            if callable(reset):
                reset()
                owned.update(id(p) for p in sub.parameters(recurse=False))
        with torch.no_grad():
            for p in module.parameters():
                if id(p) not in owned:
                    std = float(p.detach().float().std()) if p.numel() > 1 else 0.02
                    p.normal_(0.0, std if std > 0 else 0.02)
    finally:
        torch.random.set_rng_state(gen_state)
    return module


def untrained_spec(spec: ModelSpec, seed: int = 0) -> ModelSpec:
    """``spec``'s architecture, preprocessing and layers with weights drawn afresh (:func:`reinitialise`)."""
    build = spec.build
    return dataclasses.replace(
        spec, name=spec.name + UNTRAINED_SUFFIX, build=lambda: reinitialise(build(), seed), source=f"untrained control of {spec.source or spec.name}",
        description=f"{spec.name}'s architecture with random weights (seed {seed}): the untrained control",
    )  # fmt: skip
