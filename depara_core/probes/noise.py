"""Smooth colour noise: the probe set that needs nothing but numpy and torch.

>>> p = smooth_noise(4)
>>> len(p), p.size
(4, (64, 64))
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from depara_core.probes.probeset import ProbeSet

__all__ = ["smooth_noise"]


def smooth_noise(count: int, size: int = 64, seed: int = 0) -> ProbeSet:
    """Smooth colour noise: white noise upsampled from a random coarse grid (4 to 16 cells)."""
    rng = np.random.default_rng(seed)
    out = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        cells = int(rng.integers(4, 17))
        coarse = torch.from_numpy(rng.random((1, 3, cells, cells), dtype=np.float32))
        fine = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0]
        out[i] = np.round(fine.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    return ProbeSet(out, tuple(f"noise-{i:04d}" for i in range(count)), "noise", "generated (no licence needed)")
