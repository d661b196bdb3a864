"""Toy models for examples and quick trials: small random convolutional networks that build in
milliseconds (seeded, so the same call gives the same weights).

>>> nets = toy_models(3)
>>> [m.name for m in nets], nets[0].spec.encoder
(['m0', 'm1', 'm2'], 'output')
"""

from __future__ import annotations

from depara_core.models.sources import callable_spec
from depara_core.models.spec import LoadedModel, load_model

__all__ = ["toy_models"]


def _toy_net(seed: int):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh())


def toy_models(count: int = 3, seed: int = 0) -> list[LoadedModel]:
    """``count`` loaded toy networks named ``m0``, ``m1``, …, with seeds ``seed``, ``seed + 1``, …"""
    return [load_model(callable_spec(f"m{i}", lambda s=seed + i: _toy_net(s))) for i in range(count)]
