"""Ranking stability across probe halves, and graphs restricted to a subset of their probes."""

from __future__ import annotations

import numpy as np
import pytest

from depara_core.compare.pairwise import edge_similarity, node_similarity
from depara_core.engine.run import compute_graphs
from depara_core.errors import DeparaError, GraphError
from depara_core.evaluation.stability import probe_halves, ranking_stability, split_terms
from depara_core.models.toy import toy_models
from depara_core.probes.registry import load_builtin


@pytest.fixture(scope="module")
def setup():
    probes = load_builtin("noise", 10)
    models = toy_models(4, seed=2)
    return probes, models, {m.name: compute_graphs(m, probes, [m.spec.encoder])[m.spec.encoder] for m in models}


def test_a_restricted_graph_is_the_graph_computed_on_those_probes(setup):
    probes, models, graphs = setup
    idx = [7, 1, 4, 8]
    sub = probes.subset(indices=idx)
    for m in models[:2]:
        direct = compute_graphs(m, sub, [m.spec.encoder])[m.spec.encoder]
        cut = graphs[m.name].on_probes(idx)
        assert cut.probe_ids == direct.probe_ids
        np.testing.assert_allclose(cut.gram, direct.gram, rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(cut.edges, direct.edges, atol=1e-5)
        np.testing.assert_allclose(cut.nodes.astype(np.float32), direct.nodes.astype(np.float32), atol=2e-3)
    a, b = (graphs[m.name].on_probes(idx) for m in models[:2])
    da, db = (compute_graphs(m, sub, [m.spec.encoder])[m.spec.encoder] for m in models[:2])
    assert node_similarity(a, b) == pytest.approx(node_similarity(da, db), abs=2e-3)
    assert edge_similarity(a, b) == pytest.approx(edge_similarity(da, db), abs=1e-6)


@pytest.mark.parametrize("idx", [[0, 1], [0, 0, 1], [0, 1, 99], [-1, 0, 1]])
def test_bad_restrictions_are_refused(setup, idx):
    with pytest.raises(GraphError, match="at least 3 distinct"):
        next(iter(setup[2].values())).on_probes(idx)


def test_halves_are_disjoint_and_identical_halves_are_perfectly_stable(setup):
    _, _, graphs = setup
    for n in (6, 7, 10):
        h1, h2 = probe_halves(n, seed=1)
        assert not set(h1) & set(h2) and sorted([*h1, *h2]) == list(range(n)) and abs(len(h1) - len(h2)) <= 1
    with pytest.raises(DeparaError, match="cannot be split"):
        probe_halves(5)
    a, b = split_terms(graphs, seed=1)
    assert a.names == b.names == tuple(graphs)
    s = ranking_stability(a, a, lam=1.0)
    assert s.mean == pytest.approx(1.0) and set(s.per_target) == set(graphs)
    real = ranking_stability(a, b, lam=1.0)
    assert -1.0 <= real.interval.lo <= real.mean <= real.interval.hi <= 1.0
