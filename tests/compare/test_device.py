"""Where comparisons run: large work on the GPU when there is one, by one rule for every caller."""

from __future__ import annotations

import numpy as np
import torch

from depara_core.compare.device import compute_device


def test_large_work_goes_to_the_gpu_only_when_there_is_one(monkeypatch):
    assert compute_device(10**7).type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert compute_device(10**7).type == "cuda" and compute_device(100).type == "cpu"  # small ones: the copy would cost more than the sort


def test_probe_cosines_place_large_work_by_the_same_rule(monkeypatch):
    """A zoo's maps go where :func:`compute_device` says, and come back as host arrays."""
    from depara_core.compare import pairwise

    seen = []
    monkeypatch.setattr(pairwise, "compute_device", lambda size: seen.append(size) or torch.device("cpu"))
    maps = [np.random.default_rng(i).random((5, 7)).astype(np.float16) for i in range(3)]
    out = pairwise.probe_cosines(maps)
    assert seen == [3 * 5 * 7] and isinstance(out, np.ndarray) and out.shape == (5, 3, 3)


def test_rankings_place_their_work_by_the_same_rule(monkeypatch):
    from depara_core.compare import device
    from depara_core.compare.ranks import average_ranks

    seen = []
    monkeypatch.setattr(device, "compute_device", lambda size: seen.append(size) or torch.device("cpu"))
    assert average_ranks(np.zeros((4, 6))).shape == (4, 6) and seen == [24]
