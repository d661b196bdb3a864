"""Count sketch: a seeded random projection that keeps inner products, for very large node maps.

For unit vectors u, v in R^P, the sketch S(u)·S(v) is an unbiased estimate of u·v with standard
deviation at most sqrt(2 / d) (d = sketch dimension); s_V averages n such cosines, so its error
shrinks further. The hash depends only on (P, d, seed), so every model's nodes are sketched alike.

>>> import torch
>>> u = torch.nn.functional.normalize(torch.randn(2, 50_000), dim=1)
>>> s = count_sketch(u, 4096)
>>> abs(float((s[0] * s[1]).sum() - (u[0] * u[1]).sum())) < 0.1
True
"""

from __future__ import annotations

import functools

import torch

__all__ = ["count_sketch"]


@functools.lru_cache(maxsize=16)
def _hash(dim: int, sketch_dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed * 1_000_003 + dim)
    buckets = torch.randint(0, sketch_dim, (dim,), generator=gen)
    signs = torch.randint(0, 2, (dim,), generator=gen).float() * 2 - 1
    return buckets, signs


def count_sketch(x: torch.Tensor, sketch_dim: int, seed: int = 0) -> torch.Tensor:
    """Sketch the rows of ``x`` (N, P) to (N, sketch_dim)."""
    buckets, signs = _hash(x.shape[1], sketch_dim, seed)
    buckets, signs = buckets.to(x.device), signs.to(x.device, x.dtype)
    out = torch.zeros((x.shape[0], sketch_dim), dtype=x.dtype, device=x.device)
    out.index_add_(1, buckets, x * signs)
    return out
