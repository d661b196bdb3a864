"""The one rank convention used everywhere: average ranks for ties, and Spearman's ρ as the mean
product of standardised ranks.

**Degenerate input.** A vector whose values are all equal carries no rank information: its
standardised ranks are all 0, so its Spearman correlation with anything is **0**, never an error
and never NaN. This holds alike for s_E (a graph whose edges are all equal), RSA (pairwise and
zoo-wide), the per-target Spearman of rankings and layer agreement; such inputs are reported
where they arise (graph notes), not turned into NaN that would poison a mean.

>>> import numpy as np
>>> a = np.array([0.9, 0.1, 0.5]); [round(spearman(a, b), 9) for b in (2 * a, -a, np.ones(3))]
[1.0, -1.0, 0.0]
"""

from __future__ import annotations

import numpy as np

__all__ = ["standardised_ranks", "spearman", "spearman_matrix"]


def standardised_ranks(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Average ranks (scipy's ``rankdata``) scaled to mean 0 and mean square 1 along ``axis``; all 0
    where every value is equal."""
    from scipy.stats import rankdata  # imported here: scipy.stats takes about a second, and drawing results needs no ranks

    r = rankdata(np.asarray(values, dtype=np.float64), axis=axis).astype(np.float64)
    r -= r.mean(axis=axis, keepdims=True)
    sd = np.sqrt(np.mean(r * r, axis=axis, keepdims=True))
    return np.divide(r, sd, out=np.zeros_like(r), where=sd > 0)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's ρ of two vectors (equal to ``scipy.stats.spearmanr``; 0 if either is constant)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"Spearman needs two vectors of the same length ≥ 2, got {a.size} and {b.size}")
    return float(np.mean(standardised_ranks(a) * standardised_ranks(b)))


def spearman_matrix(rows: np.ndarray) -> np.ndarray:
    """ρ between every pair of rows of ``rows`` (k, n), as one matrix product; diagonal 1."""
    r = standardised_ranks(rows, axis=1)
    out = r @ r.T / r.shape[1]
    np.fill_diagonal(out, 1.0)
    return out
