"""Layer selection (Eq. 6): every layer of a source scored against a target's encoder graph.

Beside DEPARA's terms, every λ-independent baseline of :mod:`depara_core.compare.terms` is scored
per layer from the same graphs, so that a layer ranking by, e.g., PL-LogME costs nothing more.

>>> s = LayerScores("src", "tgt", ("a", "b"), np.array([0.1, 0.3]), np.array([0.5, 0.2]), others={"CKA": np.array([0.2, 0.9])})
>>> s.best(1.0), s.best(1.0, "CKA"), s.scores(0.0, "DEPARA").tolist(), s.methods
('a', 'b', [0.1, 0.3], ('DEPARA', 'DEPARA-V', 'DEPARA-E', 'CKA'))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from depara_core.compare.terms import ALL_METHODS, pairwise_terms
from depara_core.engine.graph import Graph
from depara_core.errors import DeparaError, GraphError

__all__ = ['LayerScores', 'layer_scores']


@dataclass(frozen=True)
class LayerScores:
    """Per-layer similarity of a source model to a target graph (Eq. 6)."""

    source: str
    target: str
    layers: tuple[str, ...]
    s_V: np.ndarray
    s_E: np.ndarray
    node_scale: float = 1.0
    others: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Per-layer scores of the λ-independent baselines (RSA, CKA, PL-LogME, …), by method name;
    NaN for a layer where a baseline is undefined (e.g. constant features)."""

    def combined(self, lam: float) -> np.ndarray:
        return self.node_scale * self.s_V + lam * self.s_E

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods these scores can rank layers by, in display order."""
        scored = {m for m, v in self.others.items() if np.isfinite(v).any()}
        have = {"DEPARA centred": "DEPARA-E centred" in scored}
        return tuple(m for m in ALL_METHODS if have.get(m, m in ("DEPARA", "DEPARA-V", "DEPARA-E") or m in scored))

    def scores(self, lam: float = 1.0, method: str = "DEPARA") -> np.ndarray:
        """Per-layer scores of ``method``: s(λ) for DEPARA, its terms, or a baseline's."""
        if method == "DEPARA":
            return self.combined(lam)
        if method == "DEPARA centred" and "DEPARA-E centred" in self.others:
            return self.node_scale * self.s_V + lam * self.others["DEPARA-E centred"]
        table = {"DEPARA-V": self.s_V, "DEPARA-E": self.s_E, **self.others}
        if method not in table:
            raise DeparaError(f"{method} was not scored for the layers of {self.source}", f"choose one of: {', '.join(self.methods)}")
        return table[method]

    def best(self, lam: float = 1.0, method: str = "DEPARA") -> str:
        """argmax_k s(G_k source, G_e target) (or the method's score); layers where it is undefined are skipped."""
        s = self.scores(lam, method)
        if not np.isfinite(s).any():
            raise DeparaError(f"{method} is undefined at every layer of {self.source}", f"choose one of: {', '.join(self.methods)}")
        return self.layers[int(np.nanargmax(s))]

    def ranking(self, lam: float = 1.0, method: str = "DEPARA") -> list[tuple[str, float]]:
        s = self.scores(lam, method)
        return [(self.layers[i], float(s[i])) for i in np.argsort(-np.nan_to_num(s, nan=-np.inf), kind="stable")]


_TERMS = ("DEPARA", "DEPARA-V", "DEPARA-E", "DEPARA centred")


def _layer_terms(g: Graph, target: Graph) -> tuple[float, float, dict[str, float]]:
    """s_V, s_E and every baseline's score of one source layer against the target (one pass over
    the maps: the node cosines are the costly part of scoring a layer)."""
    pair = {"source": g, "target": target}
    try:
        terms = pairwise_terms(pair)
    except GraphError:  # e.g. constant features: CKA and the others are undefined at this layer
        terms = pairwise_terms(pair, baselines=False)
    others = {m: float(terms.matrix(m)[0, 1]) for m in terms.methods if m not in _TERMS}
    return float(terms.s_V[0, 1]), float(terms.s_E[0, 1]), others


def layer_scores(source_graphs: Iterable[Graph], target: Graph, node_scale: float = 1.0) -> LayerScores:
    """Score every source layer against the target's encoder graph.

    ``source_graphs`` may be a generator (:func:`~depara_core.graphs.iter_graphs`): each graph is
    reduced to its scores and dropped, so memory holds one group of layers at a time.
    """
    layers, sv, se, others, source = [], [], [], [], ""
    for g in source_graphs:
        source = g.model
        layers.append(g.layer)
        s_v, s_e, scores = _layer_terms(g, target)
        sv.append(s_v)
        se.append(s_e)
        others.append(scores)
    if not layers:
        raise DeparaError("no source layers to score", "choose at least one layer")
    names = [m for m in ALL_METHODS if any(m in o for o in others)]
    table = {m: np.array([o.get(m, np.nan) for o in others]) for m in names}
    return LayerScores(source, target.model, tuple(layers), np.array(sv), np.array(se), node_scale, table)
