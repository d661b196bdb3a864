"""Model ranking, λ recombination, layer selection and the task tree."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY_LAYERS
from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
from scipy.spatial.distance import squareform

from depara_core.compare.layers import layer_scores
from depara_core.compare.pairwise import edge_similarity, node_similarity
from depara_core.compare.terms import SimilarityTerms
from depara_core.compare.tree import cluster_order, task_tree
from depara_core.compare.workflows import select_layers, zoo_terms
from depara_core.engine.run import compute_graphs
from depara_core.errors import DeparaError


def toy_terms() -> SimilarityTerms:
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 5)), rng.random((5, 5))
    return SimilarityTerms(tuple("abcde"), (a + a.T) / 2, (b + b.T) / 2)


def test_combined_is_linear_in_lambda():
    t = toy_terms()
    np.testing.assert_allclose(t.combined(2.5), t.s_V + 2.5 * t.s_E)
    np.testing.assert_allclose(t.combined(1.0) - t.combined(0.0), t.s_E)


def test_rank_sources_descends_and_leaves_out_the_target():
    t = toy_terms()
    ranked = t.rank_sources("c", lam=0.3)
    assert [n for n, _ in ranked] == [n for n in sorted("abde", key=lambda s: -t.combined(0.3)[t.index(s), 2])]
    assert "c" not in [n for n, _ in ranked]
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True)
    with pytest.raises(DeparaError, match="no model named 'z'"):
        t.rank_sources("z")


def test_method_matrices():
    t = toy_terms()
    np.testing.assert_array_equal(t.matrix("DEPARA-V"), t.s_V)
    np.testing.assert_array_equal(t.matrix("DEPARA-E"), t.s_E)
    with pytest.raises(DeparaError, match="RSA was not computed"):
        t.matrix("RSA")


def test_task_tree_matches_scipy():
    t = toy_terms()
    s = t.combined(1.0)
    tree = task_tree(s, t.names, method="average")
    d = s.max() - s
    np.fill_diagonal(d, 0)
    z = optimal_leaf_ordering(linkage(squareform(d, checks=False), "average"), squareform(d, checks=False))
    np.testing.assert_allclose(tree.linkage, z)
    assert list(tree.order) == leaves_list(z).tolist()
    rows = task_tree(s, t.names, method="single", basis="rows")
    np.testing.assert_allclose(rows.linkage, optimal_leaf_ordering(linkage(s / s.max(), "single"), s / s.max()))
    assert sorted(rows.ordered_labels) == list("abcde")


def test_task_tree_groups_two_obvious_clusters():
    s = np.full((4, 4), 0.1)
    s[:2, :2] = s[2:, 2:] = 0.9
    tree = task_tree(s, ["a", "b", "c", "d"])
    assert {frozenset(tree.ordered_labels[:2]), frozenset(tree.ordered_labels[2:])} == {frozenset("ab"), frozenset("cd")}


def test_layer_scores_pick_argmax_and_match_pairwise(zoo, probes):
    target = compute_graphs(zoo[1], probes, ["act2"])["act2"]
    source = compute_graphs(zoo[0], probes, list(TINY_LAYERS))
    scores = layer_scores(source.values(), target)
    for i, layer in enumerate(TINY_LAYERS):
        assert scores.s_V[i] == pytest.approx(node_similarity(source[layer], target))
        assert scores.s_E[i] == pytest.approx(edge_similarity(source[layer], target))
    for lam in (0.0, 1.0, 10.0):
        assert scores.best(lam) == TINY_LAYERS[int(np.argmax(scores.s_V + lam * scores.s_E))]
        assert scores.ranking(lam)[0][0] == scores.best(lam)


def test_select_layers_streams_and_uses_the_cache(zoo, probes, tmp_path, monkeypatch):
    from depara_core.cache import GraphCache
    from depara_core.compare import layers as layers_module
    from depara_core.compare import workflows

    cache = GraphCache(tmp_path)
    runs, held = [], []
    real_iter, real_terms = workflows.iter_graphs, layers_module._layer_terms

    def counting(model, probes_, layers, *args, **kwargs):
        runs.append(list(layers))
        return real_iter(model, probes_, layers, *args, **kwargs)

    def watching(g, target):  # called once per source layer as it streams past
        import gc

        held.append(sum(1 for o in gc.get_objects() if type(o) is type(g) and o.model == g.model))
        return real_terms(g, target)

    monkeypatch.setattr(workflows, "iter_graphs", counting)
    monkeypatch.setattr(layers_module, "_layer_terms", watching)
    direct = layer_scores(compute_graphs(zoo[0], probes, list(TINY_LAYERS)).values(), compute_graphs(zoo[1], probes, ["act2"])["act2"])
    runs.clear(), held.clear()
    streamed = select_layers(zoo[0], zoo[1], probes, list(TINY_LAYERS), cache=cache, memory_budget=35_000)
    # the budget also batches the target differently: float16 storage rounds a little differently
    np.testing.assert_allclose(streamed.s_V, direct.s_V, atol=1e-5)
    np.testing.assert_allclose(streamed.s_E, direct.s_E, atol=1e-5)
    assert runs == [list(TINY_LAYERS)]  # one engine run for the missing layers
    assert max(held) <= 3  # a group of layers at a time (the budget fits about two), never all five
    held.clear()
    again = select_layers(zoo[0], zoo[1], probes, list(reversed(TINY_LAYERS)), cache=cache)
    assert runs == [list(TINY_LAYERS)]  # the second call is served from the cache: no engine run
    assert max(held) <= 2  # cached layers are read one at a time
    assert again.layers == tuple(reversed(TINY_LAYERS))
    np.testing.assert_allclose(again.s_E[::-1], direct.s_E, atol=1e-6)


def test_zoo_terms_are_cached(zoo, probes, tmp_path):
    from depara_core.cache import GraphCache

    cache = GraphCache(tmp_path)
    first = zoo_terms(zoo, probes, cache=cache)
    assert list(tmp_path.glob("terms/*/*.npz"))
    second = zoo_terms(zoo, probes, cache=cache)
    np.testing.assert_array_equal(first.s_E, second.s_E)
    np.testing.assert_array_equal(first.cka, second.cka)


def test_optimal_leaf_order_puts_similar_leaves_next_to_each_other():
    """Among orders consistent with the tree, neighbours are at least as similar as in scipy's plain order."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 4))
    s = x @ x.T
    plain = leaves_list(linkage(squareform(np.clip(s.max() - s, 0, None) * (1 - np.eye(12)), checks=False), "average"))
    best = cluster_order(s)

    def adjacent(order):
        return sum(s[a, b] for a, b in zip(order[:-1], order[1:]))

    assert sorted(best.tolist()) == list(range(12)) and adjacent(best) >= adjacent(plain) - 1e-9
