"""s_V, s_E, RSA and CKA against independent numpy/scipy computations, and their invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_probes
from scipy.stats import spearmanr

from depara_core.compare.pairwise import (
    cka_similarity,
    depara_similarity,
    edge_similarity,
    node_similarity,
    probe_cosines,
    rsa_similarity,
    upper_triangle,
)
from depara_core.compare.terms import pairwise_terms
from depara_core.engine.run import compute_graphs
from depara_core.errors import GraphError


def encoder_graphs(models, probes):
    return {m.name: compute_graphs(m, probes, ["act2"])["act2"] for m in models}


def features(model, probes, layer="act2") -> np.ndarray:
    store = {}
    h = dict(model.module.named_modules())[layer].register_forward_hook(lambda m, i, o: store.setdefault("f", o))
    with torch.no_grad():
        model.module(model.spec.preprocess(probes.images))
    h.remove()
    return store["f"].flatten(1).double().numpy()


def test_probe_cosines_match_float64_cosines_over_chunks_and_zero_maps():
    rng = np.random.default_rng(3)
    maps = [rng.standard_normal((7, 300)).astype(np.float16) * s for s in (1, 50, 1e-3)]
    maps[1][2] = 0  # an all-zero map: cosine 0 with every map, itself included
    maps[2].setflags(write=False)  # as maps read from the cache are
    got = probe_cosines(maps, chunk_bytes=3 * 300 * 4 * 2)  # chunks of two probes
    ref = np.zeros((7, 3, 3))
    for c in range(7):
        for i in range(3):
            for j in range(3):
                a, b = maps[i][c].astype(np.float64), maps[j][c].astype(np.float64)
                den = np.linalg.norm(a) * np.linalg.norm(b)
                ref[c, i, j] = a @ b / den if den > 0 else 0.0
    np.testing.assert_allclose(got, ref, atol=1e-6)
    assert got[2, 1, 1] == 0 and got[2, 0, 1] == 0


def test_node_similarity_is_mean_per_probe_cosine(zoo, probes):
    g = encoder_graphs(zoo[:2], probes)
    a, b = g["m0"], g["m1"]
    va = a.nodes.astype(np.float64) * a.node_norms[:, None]
    vb = b.nodes.astype(np.float64) * b.node_norms[:, None]
    ref = np.mean([va[i] @ vb[i] / np.linalg.norm(va[i]) / np.linalg.norm(vb[i]) for i in range(len(probes))])
    assert node_similarity(a, b) == pytest.approx(ref, abs=2e-3)


def test_edge_similarity_is_scipy_spearman_of_upper_triangles(zoo, probes):
    g = encoder_graphs(zoo[:2], probes)
    ea, eb = g["m0"].edges, g["m1"].edges
    iu = np.triu_indices(len(probes), 1)
    assert edge_similarity(g["m0"], g["m1"]) == pytest.approx(spearmanr(ea[iu], eb[iu]).statistic, abs=1e-12)


def test_self_similarity_is_one_plus_lambda(zoo, probes):
    g = encoder_graphs(zoo[:1], probes)["m0"]
    for lam in (0.0, 0.5, 3.0):
        assert depara_similarity(g, g, lam) == pytest.approx(1 + lam, abs=1e-3)


def test_pairwise_terms_match_pairwise_functions_and_are_symmetric(zoo, probes):
    graphs = encoder_graphs(zoo, probes)
    terms = pairwise_terms(graphs)
    names = list(graphs)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i == j:
                continue
            assert terms.s_E[i, j] == pytest.approx(edge_similarity(graphs[a], graphs[b]), abs=1e-9)
            assert terms.s_V[i, j] == pytest.approx(node_similarity(graphs[a], graphs[b]), abs=1e-6)  # float32 sums
            assert terms.rsa[i, j] == pytest.approx(rsa_similarity(graphs[a], graphs[b]), abs=1e-9)
            assert terms.cka[i, j] == pytest.approx(cka_similarity(graphs[a], graphs[b]), abs=1e-9)
    for m in (terms.s_V, terms.s_E, terms.rsa, terms.cka, terms.combined(0.7)):
        np.testing.assert_allclose(m, m.T)
    np.testing.assert_allclose(np.diag(terms.combined(0.7)), 1.7)


def test_rsa_matches_numpy(zoo, probes):
    fa, fb = features(zoo[0], probes), features(zoo[1], probes)

    def rdm(f):
        c = f - f.mean(0)  # centred over probes
        return 1 - np.corrcoef(c)  # 1 - Pearson between probes

    ref = spearmanr(upper_triangle(rdm(fa)), upper_triangle(rdm(fb))).statistic
    g = encoder_graphs(zoo[:2], probes)
    assert rsa_similarity(g["m0"], g["m1"]) == pytest.approx(ref, abs=1e-6)


def test_linear_cka_matches_feature_space_formula(zoo, probes):
    fa, fb = features(zoo[0], probes), features(zoo[2], probes)
    x, y = fa - fa.mean(0), fb - fb.mean(0)
    ref = np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))
    g = {m.name: compute_graphs(m, probes, ["act2"])["act2"] for m in (zoo[0], zoo[2])}
    assert cka_similarity(g["m0"], g["m2"]) == pytest.approx(ref, abs=1e-4)  # float16 feature storage


def test_graphs_on_different_probes_do_not_compare(zoo, probes):
    a = compute_graphs(zoo[0], probes, ["act2"])["act2"]
    b = compute_graphs(zoo[1], random_probes(seed=5), ["act2"])["act2"]
    with pytest.raises(GraphError, match="different probe sets"):
        node_similarity(a, b)


def test_maps_of_different_sizes_compare_on_the_coarser_grid(probes):
    import torch.nn.functional as F
    from conftest import TinyNet

    from depara_core.models.preprocess import Preprocess
    from depara_core.models.sources import callable_spec
    from depara_core.models.spec import load_model

    small = load_model(callable_spec("small", lambda: TinyNet(1), preprocess=Preprocess(size=(6, 6))))
    large = load_model(callable_spec("large", lambda: TinyNet(2), preprocess=Preprocess(size=(12, 12))))
    a = compute_graphs(small, probes, ["act2"])["act2"]
    b = compute_graphs(large, probes, ["act2"])["act2"]
    pooled = F.adaptive_avg_pool2d(torch.from_numpy(b.nodes.astype(np.float32)).reshape(-1, 3, 12, 12), (6, 6)).flatten(1).numpy()
    va = a.nodes.astype(np.float32)
    ref = np.mean(np.einsum("ij,ij->i", va, pooled) / np.linalg.norm(va, axis=1) / np.linalg.norm(pooled, axis=1))
    assert node_similarity(a, b) == pytest.approx(ref, abs=1e-5) == pytest.approx(node_similarity(b, a), abs=1e-5)
