"""Where a comparison's large tensor work runs: the GPU for large inputs when there is one.

>>> compute_device(1000).type
'cpu'
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICE_ABOVE", "compute_device", "read_only_tensor"]

DEVICE_ABOVE = 2**16
"""Inputs of more values than this go to the GPU when there is one; smaller ones stay on the CPU,
where the copy to the device would cost more than the work."""


def compute_device(size: int) -> torch.device:
    """CUDA for work on more than :data:`DEVICE_ABOVE` values when CUDA is available, else the CPU."""
    import torch  # imported where used: figures draw kept results without loading torch

    return torch.device("cuda" if size > DEVICE_ABOVE and torch.cuda.is_available() else "cpu")


def read_only_tensor(array: np.ndarray) -> torch.Tensor:
    """A torch view of ``array`` without a copy, for work that only reads it: arrays read from the
    cache are read-only, which torch shares with a warning (writing through the view would be
    undefined; nothing here writes)."""
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(np.asarray(array))
