"""Where a comparison's large tensor work runs: the GPU for large inputs when there is one.

>>> compute_device(1000).type
'cpu'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICE_ABOVE", "compute_device"]

DEVICE_ABOVE = 2**16
"""Inputs of more values than this go to the GPU when there is one; smaller ones stay on the CPU,
where the copy to the device would cost more than the work."""


def compute_device(size: int) -> torch.device:
    """CUDA for work on more than :data:`DEVICE_ABOVE` values when CUDA is available, else the CPU."""
    import torch  # imported where used: figures draw kept results without loading torch

    return torch.device("cuda" if size > DEVICE_ABOVE and torch.cuda.is_available() else "cpu")
