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


def test_the_baselines_eigendecompositions_place_large_work_by_the_same_rule(monkeypatch):
    """The spectra behind LogME, the H-score and the pseudo-classes: where the rule says, and the
    torch path gives numpy's eigenpairs (checked here on the CPU)."""
    from depara_core.compare import baselines

    x = np.random.default_rng(0).normal(size=(30, 8))
    gram = x @ x.T
    seen = []
    monkeypatch.setattr(baselines, "compute_device", lambda size: seen.append(size) or torch.device("cpu"))
    s, u = baselines.centred_spectrum(gram)
    assert seen == [30 * 30] and s.shape == (8,) and u.shape == (30, 8)  # the non-zero ones: the features' rank
    ref_s, ref_u = np.linalg.eigh(gram)
    got_s, got_u = baselines.eigh_on(gram, torch.device("cpu"))
    np.testing.assert_allclose(got_s, ref_s, rtol=1e-10, atol=1e-9)
    top = slice(-8, None)  # the non-zero ones; eigenvectors agree up to sign
    np.testing.assert_allclose(np.abs(np.sum(got_u[:, top] * ref_u[:, top], axis=0)), 1.0, atol=1e-9)


def test_read_only_arrays_are_read_without_a_copy_or_a_warning():
    """Maps and edges read from the cache are read-only: the comparisons read them in place, quietly."""
    import warnings

    from depara_core.compare.device import read_only_tensor
    from depara_core.compare.ranks import average_ranks

    a = np.arange(6, dtype=np.float64)[::-1].copy()
    a.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = read_only_tensor(a)
        ranks = average_ranks(a)
    assert t.data_ptr() == a.ctypes.data and ranks.tolist() == [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
