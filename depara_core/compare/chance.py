"""How far s_V is above chance: a permutation null of mismatched probes.

s_V is the mean over probes of the cosine between two models' attribution maps of the *same*
probe. Maps can be alike for reasons that have nothing to do with the probe (a shared centre bias,
the same checkerboard of a stride); pairing each map of A with B's map of a *different* probe
measures that floor. If s_V is not above the floor, the node term says nothing about these two
models. Works for any pair of graphs on the same probes; no untrained control is needed.

>>> import numpy as np
>>> from depara_core.models.toy import toy_models
>>> from depara_core.probes.registry import load_builtin
>>> from depara_core.engine.run import compute_graphs
>>> probes = load_builtin("noise", 6)
>>> a, b = [compute_graphs(m, probes, [m.spec.encoder])[m.spec.encoder] for m in toy_models(2)]
>>> c = node_chance(a, a, rounds=99)
>>> round(c.matched, 3), c.p_value, c.at_chance
(1.0, 0.01, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from depara_core.compare.pairwise import check_comparable, comparable_nodes
from depara_core.engine.graph import Graph

__all__ = ["NodeChance", "node_chance", "derangement"]


@dataclass(frozen=True)
class NodeChance:
    """The matched per-probe cosines (the terms of s_V), and the same statistic with probes mismatched."""

    matched_cosines: np.ndarray = field(repr=False)
    null_cosines: np.ndarray = field(repr=False)
    """(rounds, probes): cosine of A's map of probe i with B's map of probe π(i), π a random derangement."""
    alpha: float = 0.05

    @property
    def matched(self) -> float:
        """s_V."""
        return float(self.matched_cosines.mean())

    @property
    def null_means(self) -> np.ndarray:
        return self.null_cosines.mean(axis=1)

    @property
    def floor(self) -> float:
        """The (1 − alpha) quantile of s_V under mismatched probes."""
        return float(np.quantile(self.null_means, 1 - self.alpha))

    @property
    def p_value(self) -> float:
        """Permutation p-value of s_V against mismatched probes (with the +1 correction; ties, up to
        rounding of the sums, count against s_V)."""
        return float((1 + np.sum(self.null_means >= self.matched - 1e-9)) / (1 + len(self.null_means)))

    @property
    def at_chance(self) -> bool:
        return self.p_value > self.alpha


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random permutation of ``range(n)`` with no fixed point (rejection sampling; n ≥ 2)."""
    if n < 2:
        raise ValueError("a derangement needs at least two items")
    while True:
        p = rng.permutation(n)
        if not np.any(p == np.arange(n)):
            return p


def node_chance(a: Graph, b: Graph, rounds: int = 200, seed: int = 0, alpha: float = 0.05) -> NodeChance:
    """s_V of ``a`` and ``b`` against ``rounds`` pairings of mismatched probes (see the module)."""
    check_comparable(a, b)
    va, vb = comparable_nodes(a, b)
    na, nb = np.linalg.norm(va, axis=1), np.linalg.norm(vb, axis=1)
    ua = np.divide(va, na[:, None], out=np.zeros_like(va), where=na[:, None] > 0)
    ub = np.divide(vb, nb[:, None], out=np.zeros_like(vb), where=nb[:, None] > 0)
    cos = ua @ ub.T  # every probe of A against every probe of B: the null reads off this matrix
    rng = np.random.default_rng(seed)
    n = len(cos)
    null = np.stack([cos[np.arange(n), derangement(n, rng)] for _ in range(rounds)])
    return NodeChance(np.diag(cos).copy(), null, alpha)
