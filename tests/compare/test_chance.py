"""The chance level of s_V (mismatched probes) against a direct computation and its limiting cases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from depara_core.compare.chance import derangement, node_chance
from depara_core.compare.pairwise import node_similarity
from depara_core.engine.run import compute_graphs
from depara_core.models.toy import toy_models
from depara_core.probes.registry import load_builtin


@pytest.fixture(scope="module")
def graphs():
    probes = load_builtin("noise", 9)
    return [compute_graphs(m, probes, [m.spec.encoder])[m.spec.encoder] for m in toy_models(2)]


def test_null_is_the_cosine_of_mismatched_probes(graphs):
    a, b = graphs
    c = node_chance(a, b, rounds=7, seed=3)
    assert c.matched == pytest.approx(node_similarity(a, b), abs=1e-6)
    rng = np.random.default_rng(3)
    va, vb = a.nodes.astype(np.float64), b.nodes.astype(np.float64)
    for row in c.null_cosines:
        p = derangement(len(va), rng)
        direct = [va[i] @ vb[p[i]] / (np.linalg.norm(va[i]) * np.linalg.norm(vb[p[i]])) for i in range(len(va))]
        np.testing.assert_allclose(row, direct, atol=1e-5)
    assert c.p_value == pytest.approx((1 + np.sum(c.null_means >= c.matched)) / 8)


def test_a_model_with_itself_is_far_above_chance(graphs):
    c = node_chance(graphs[0], graphs[0], rounds=49)
    assert c.matched == pytest.approx(1.0, abs=1e-3) and c.p_value == pytest.approx(1 / 50) and not c.at_chance


def test_maps_that_ignore_the_probe_are_at_chance(graphs):
    a, b = graphs
    same_map = np.repeat(b.nodes[:1], len(b), axis=0)  # B draws one map whatever the probe
    c = node_chance(a, dataclasses.replace(b, nodes=same_map), rounds=30)
    np.testing.assert_allclose(c.null_means, c.matched, atol=1e-6)
    assert c.p_value == 1.0 and c.at_chance


def test_derangements_have_no_fixed_point():
    rng = np.random.default_rng(0)
    for n in (2, 3, 10):
        p = derangement(n, rng)
        assert sorted(p) == list(range(n)) and not np.any(p == np.arange(n))
    with pytest.raises(ValueError):
        derangement(1, rng)
