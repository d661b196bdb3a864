"""Layer selection (Eq. 6): every layer of a source scored against a target's encoder graph."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from depara_core.compare.pairwise import (
    edge_similarity,
    node_similarity,
)
from depara_core.engine.graph import Graph
from depara_core.errors import DeparaError

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

    def combined(self, lam: float) -> np.ndarray:
        return self.node_scale * self.s_V + lam * self.s_E

    def best(self, lam: float = 1.0) -> str:
        """argmax_k s(G_k source, G_e target)."""
        return self.layers[int(np.argmax(self.combined(lam)))]

    def ranking(self, lam: float = 1.0) -> list[tuple[str, float]]:
        s = self.combined(lam)
        return [(self.layers[i], float(s[i])) for i in np.argsort(-s, kind="stable")]


def layer_scores(source_graphs: Iterable[Graph], target: Graph, node_scale: float = 1.0) -> LayerScores:
    """Score every source layer against the target's encoder graph.

    ``source_graphs`` may be a generator (:func:`~depara_core.graphs.iter_graphs`): each graph is
    reduced to two numbers and dropped, so memory holds one group of layers at a time.
    """
    layers, sv, se, source = [], [], [], ""
    for g in source_graphs:
        source = g.model
        layers.append(g.layer)
        sv.append(node_similarity(g, target))
        se.append(edge_similarity(g, target))
    if not layers:
        raise DeparaError("no source layers to score", "choose at least one layer")
    return LayerScores(source, target.model, tuple(layers), np.array(sv), np.array(se), node_scale)
