"""How stable a zoo's rankings are under a change of probes: two disjoint halves of the probes,
each giving its own terms, and per target the Spearman correlation of the two rankings of sources.

A ranking that changes when half the probes are swapped for others should not be read closely;
this is the "stability badge" of the app. It needs no labels and no new forward pass: graphs are
restricted to each half (:meth:`~depara_core.engine.graph.Graph.on_probes`).

>>> from depara_core.models.toy import toy_models
>>> from depara_core.probes.registry import load_builtin
>>> from depara_core.engine.run import compute_graphs
>>> probes = load_builtin("noise", 12)
>>> graphs = {m.name: compute_graphs(m, probes, [m.spec.encoder])[m.spec.encoder] for m in toy_models(4)}
>>> halves = split_terms(graphs)
>>> s = ranking_stability(*halves, lam=1.0)
>>> len(s.per_target), -1.0 <= s.mean <= 1.0
(4, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from depara_core.compare.ranks import spearman
from depara_core.compare.terms import SimilarityTerms, pairwise_terms
from depara_core.engine.graph import Graph
from depara_core.errors import DeparaError
from depara_core.evaluation.statistics import Interval, bootstrap_ci

__all__ = ["Stability", "probe_halves", "split_terms", "ranking_stability"]


@dataclass(frozen=True)
class Stability:
    """Per target, Spearman's ρ between the rankings of sources from two disjoint probe halves."""

    per_target: Mapping[str, float] = field(repr=False)
    interval: Interval

    @property
    def mean(self) -> float:
        return self.interval.mean

    def text(self) -> str:
        return f"ρ {self.interval.mean:.2f} [{self.interval.lo:.2f}, {self.interval.hi:.2f}]"


def split_terms(graphs: Mapping[str, Graph], seed: int = 0, node_scale: float = 1.0, baselines: bool = True) -> tuple[SimilarityTerms, SimilarityTerms]:
    """Terms of the same graphs on two random disjoint halves of their probes (every method, with ``baselines``)."""
    halves = probe_halves(len(next(iter(graphs.values()))), seed)
    return tuple(pairwise_terms({k: g.on_probes(h) for k, g in graphs.items()}, baselines=baselines, node_scale=node_scale) for h in halves)  # type: ignore[return-value]


def probe_halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint, sorted random halves of ``range(n)`` that together cover it."""
    if n < 6:
        raise DeparaError(f"{n} probes cannot be split into two halves of at least 3", "use 6 or more probes")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def ranking_stability(a: SimilarityTerms, b: SimilarityTerms, lam: float = 1.0, method: str = "DEPARA") -> Stability:
    """Per target, Spearman of ``method``'s source scores (the target left out) from the two halves."""
    if a.names != b.names:
        raise DeparaError("the two halves hold different models", "split the same graphs")
    ma, mb = a.matrix(method, lam), b.matrix(method, lam)
    per = {}
    for j, t in enumerate(a.names):
        keep = np.arange(len(a.names)) != j
        per[t] = spearman(ma[keep, j], mb[keep, j])
    return Stability(per, bootstrap_ci(list(per.values())))
