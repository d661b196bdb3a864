"""The one rank convention: standardised average ranks, and Spearman correlation from them.

>>> import numpy as np
>>> a = np.array([0.9, 0.1, 0.5]); spearman_edges(a, 2 * a)
1.0
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata, spearmanr

from depara_core.errors import GraphError

__all__ = ['spearman_edges', 'standardised_ranks']


def spearman_edges(ea: np.ndarray, eb: np.ndarray) -> float:
    """Spearman correlation of two edge vectors (ties get average ranks), via scipy."""
    if np.ptp(ea) == 0 or np.ptp(eb) == 0:
        raise GraphError("all edges of a graph are equal: their Spearman correlation is undefined", "choose a layer whose features vary across probes")
    return float(spearmanr(ea, eb).statistic)


def standardised_ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks scaled to mean 0 and mean square 1 (all 0 when every value is equal), so that
    the Spearman correlation of two vectors is the mean of the products of their standardised ranks."""
    r = rankdata(values).astype(np.float64)
    r -= r.mean()
    sd = np.sqrt(np.mean(r * r))
    return r / sd if sd > 0 else r
