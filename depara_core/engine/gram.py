"""Gram-matrix algebra shared by edges, RSA and CKA: degenerate rows, cosines, centring.

>>> import numpy as np
>>> edges_from_gram(np.array([[4.0, 2.0], [2.0, 4.0]])).tolist()
[[1.0, 0.5], [0.5, 1.0]]
"""

from __future__ import annotations

import numpy as np

__all__ = ['degenerate_rows', 'edges_from_gram', 'center_gram', 'u_center_gram', 'squared_distances']


def degenerate_rows(gram: np.ndarray) -> np.ndarray:
    """Indices of probes whose feature vector is (numerically) zero in this Gram matrix."""
    diag = np.diag(gram)
    return np.flatnonzero(diag <= 1e-12 * max(float(np.max(np.abs(diag))), 1e-300))


def edges_from_gram(gram: np.ndarray, center: bool = False) -> np.ndarray:
    """Cosine similarity matrix from a Gram matrix (optionally of probe-centred features).

    Zero feature vectors have no direction: their cosines are set to 0 (1 on the diagonal).
    """
    k = center_gram(gram) if center else np.asarray(gram, np.float64)
    zero = degenerate_rows(k)
    diag = np.diag(k).copy()
    diag[zero] = 1.0
    inv = 1.0 / np.sqrt(diag)
    inv[zero] = 0.0
    e = k * inv[:, None] * inv[None, :]
    np.clip(e, -1.0, 1.0, out=e)
    np.fill_diagonal(e, 1.0)
    return e.astype(np.float32)


def center_gram(gram: np.ndarray) -> np.ndarray:
    """H K H with H the centring matrix: the Gram matrix of features centred over probes."""
    g = np.asarray(gram, np.float64)
    row = g.mean(axis=0, keepdims=True)
    return g - row - row.T + g.mean()


def u_center_gram(gram: np.ndarray) -> np.ndarray:
    """The U-centred Gram matrix (Székely & Rizzo 2014): zero diagonal, and the inner product of two
    U-centred matrices is an unbiased HSIC estimate (debiased CKA, Kornblith et al. 2019).

    It annihilates every matrix of the form a_i + a_j, so shifting all features by a constant
    vector leaves it unchanged. Needs at least 4 probes.
    """
    g = np.array(gram, dtype=np.float64)
    n = g.shape[0]
    if n < 4:
        raise ValueError(f"U-centring needs at least 4 probes, got {n}")
    np.fill_diagonal(g, 0.0)
    means = g.sum(axis=0) / (n - 2)
    means -= means.sum() / (2 * (n - 1))
    g -= means[:, None] + means[None, :]
    np.fill_diagonal(g, 0.0)
    return g


def squared_distances(gram: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between probes' features, from their Gram matrix (clipped at 0)."""
    g = np.asarray(gram, np.float64)
    d = np.diag(g)
    return np.maximum(d[:, None] + d[None, :] - 2.0 * g, 0.0)
