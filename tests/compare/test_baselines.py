"""The further baselines (debiased CKA, DDS, pseudo-label LogME, centred edges) against direct
computations from the features, written here from the published algorithms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA
from sklearn.metrics.pairwise import euclidean_distances

from depara_core.cache import GraphCache
from depara_core.compare.baselines import (
    dds_matrix,
    debiased_cka,
    h_score,
    h_score_matrix,
    ledoit_wolf_shrinkage,
    logme_matrix,
    nce,
    nce_matrix,
    pseudo_classes,
)
from depara_core.compare.pairwise import upper_triangle
from depara_core.compare.terms import ALL_METHODS, BASELINES, SimilarityTerms, pairwise_terms
from depara_core.engine.graph import Graph
from depara_core.errors import DeparaError


def graph_of(x: np.ndarray, name: str = "m") -> Graph:
    """A graph whose feature statistics are those of ``x`` (probes × features); nodes are unused here."""
    n = x.shape[0]
    return Graph(name, "layer", tuple(f"p{i}" for i in range(n)), "digest", np.ones((n, 4), np.float16) / 2, np.ones(n), (4,),
                 x @ x.T, x.sum(axis=1), x.shape[1])  # fmt: skip


def hsic_unbiased(k: np.ndarray, l: np.ndarray) -> float:
    """Song et al. (2007), eq. 5: the unbiased HSIC estimator, written out term by term."""
    n = k.shape[0]
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    one = np.ones(n)
    return float((np.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2)) - 2 / (n - 2) * one @ k @ l @ one) / (n * (n - 3)))


def cka_unbiased(k: np.ndarray, l: np.ndarray) -> float:
    return hsic_unbiased(k, l) / np.sqrt(hsic_unbiased(k, k) * hsic_unbiased(l, l))


def logme_reference(f: np.ndarray, y: np.ndarray) -> float:
    """LogME (You et al., ICML 2021, Algorithm 1) in its primal form on features ``f`` (n × D),
    averaged over the columns of ``y``."""
    n, d = f.shape
    s, v = np.linalg.eigh(f.T @ f)
    out = []
    for col in y.T:
        alpha, beta = 1.0, 1.0
        lam = alpha / beta
        tmp = v.T @ (f.T @ col)
        for _ in range(11):
            gamma = (s / (s + lam)).sum()
            m = v @ (tmp * beta / (alpha + beta * s))
            alpha_de = (m * m).sum()
            alpha = gamma / (alpha_de + 1e-5)
            beta_de = ((col - f @ m) ** 2).sum()
            beta = (n - gamma) / (beta_de + 1e-5)
            new_lam = alpha / beta
            if np.abs(new_lam - lam) / lam < 0.01:
                break
            lam = new_lam
        evidence = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - 0.5 * np.sum(np.log(alpha + beta * s))
                    - beta / 2 * beta_de - alpha / 2 * alpha_de - n / 2 * np.log(2 * np.pi))  # fmt: skip
        out.append(evidence / n)
    return float(np.mean(out))


@pytest.fixture
def feats():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(40, 6))
    return [base @ rng.normal(size=(6, d)) + 0.3 * rng.normal(size=(40, d)) + 1.5 for d in (12, 30, 60)]


def test_debiased_cka_matches_song_estimator_and_ignores_feature_shift(feats):
    a, b = feats[0], feats[1]
    assert debiased_cka(a @ a.T, b @ b.T) == pytest.approx(cka_unbiased(a @ a.T, b @ b.T), abs=1e-10)
    shifted = a + 7.0
    assert debiased_cka(shifted @ shifted.T, b @ b.T) == pytest.approx(debiased_cka(a @ a.T, b @ b.T), abs=1e-9)


def test_dds_matches_reference_kernels(feats):
    gs = [graph_of(x, f"m{i}") for i, x in enumerate(feats)]

    def rbf(x):
        d2 = euclidean_distances(x, squared=True)
        return np.exp(-d2 / (2 * 0.25 * np.median(d2)))

    for kernel, ref in (("rbf", rbf), ("euclidean", euclidean_distances), ("pearson", lambda x: 1 - np.corrcoef(x - x.mean(axis=0)))):
        m = dds_matrix(gs, kernel)
        assert m[0, 1] == pytest.approx(cka_unbiased(ref(feats[0]), ref(feats[1])), abs=1e-8), kernel
        assert m[1, 2] == pytest.approx(m[2, 1], abs=1e-12)


@pytest.mark.parametrize("dim", [12, 60])  # fewer and more features than probes
def test_pseudo_label_logme_matches_primal_logme_on_features(feats, dim):
    source = next(x for x in feats if x.shape[1] == dim)
    target = feats[1]
    labels = PCA(n_components=16).fit_transform(target)  # the target's top principal components
    got = logme_matrix([graph_of(source, "s"), graph_of(target, "t")])
    assert got[0, 1] == pytest.approx(logme_reference(source, labels), rel=1e-6, abs=1e-8)


def test_logme_is_rotation_invariant_and_prefers_informative_sources(feats):
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(30, 30)))
    target, noise = feats[1], rng.normal(size=(40, 30))
    m = logme_matrix([graph_of(target, "t"), graph_of(target @ q, "rotated"), graph_of(noise, "noise")])
    assert m[1, 0] == pytest.approx(m[0, 0], rel=1e-6)
    assert m[1, 0] > m[2, 0] + 0.5  # features that span the target's components explain them


def h_score_reference(f: np.ndarray, y: np.ndarray) -> float:
    """The shrinkage H-score written on the features (Ibrahim et al. 2021's code): scikit-learn's
    Ledoit-Wolf covariance, the class-mean features' ``np.cov``, a pseudo-inverse."""
    f = f - f.mean(axis=0)
    lw = LedoitWolf().fit(f)
    g = np.zeros_like(f)
    for c in np.unique(y):
        g[y == c] = f[y == c].mean(axis=0)
    return float(np.trace(np.linalg.pinv(lw.covariance_, rcond=1e-15) @ ((1 - lw.shrinkage_) * np.cov(g, rowvar=False))))


@pytest.mark.parametrize("dim", [12, 60])  # fewer and more features than probes
def test_h_score_matches_the_primal_shrinkage_h_score_on_features(feats, dim):
    source = next(x for x in feats if x.shape[1] == dim)
    labels = np.random.default_rng(1).integers(0, 5, size=len(source))
    k = source @ source.T
    assert ledoit_wolf_shrinkage(k - k.mean(0) - k.mean(1)[:, None] + k.mean(), dim)[0] == pytest.approx(LedoitWolf().fit(source).shrinkage_, rel=1e-9)
    assert h_score(k, labels, dim) == pytest.approx(h_score_reference(source, labels), rel=1e-7)


def test_pseudo_label_h_score_and_nce_follow_the_targets_classes(feats):
    target = feats[1]
    labels = pseudo_classes(target @ target.T)
    assert 2 <= len(np.unique(labels)) <= 8 and np.array_equal(labels, pseudo_classes(target @ target.T))  # deterministic
    rng = np.random.default_rng(0)
    noise = rng.normal(size=target.shape)
    gs = [graph_of(target, "t"), graph_of(target + 0.05 * rng.normal(size=target.shape), "near"), graph_of(noise, "noise")]
    h = h_score_matrix(gs)
    assert h[0, 0] == pytest.approx(h_score(target @ target.T, labels, target.shape[1]))
    assert h[1, 0] > h[2, 0]  # features near the target's separate its classes better than noise
    n = nce_matrix(gs)
    assert n[0, 0] == pytest.approx(0.0) and np.all(n <= 1e-12) and n[1, 0] > n[2, 0]
    a, b = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])  # independent labellings: -H = -log 2
    assert nce(a, b) == pytest.approx(-np.log(2)) and nce(a, a) == 0.0


def test_centred_edges_are_spearman_of_centred_cosines(feats):
    gs = {f"m{i}": graph_of(x, f"m{i}") for i, x in enumerate(feats)}
    terms = pairwise_terms(gs)

    def centred_edges(x):
        c = x - x.mean(axis=0)
        c /= np.linalg.norm(c, axis=1, keepdims=True)
        return upper_triangle(c @ c.T)

    assert terms.matrix("DEPARA-E centred")[0, 2] == pytest.approx(spearmanr(centred_edges(feats[0]), centred_edges(feats[2])).statistic, abs=1e-9)
    lam = 0.7
    assert terms.matrix("DEPARA centred", lam) == pytest.approx(terms.s_V + lam * terms.matrix("DEPARA-E centred"))


def test_terms_share_one_spectrum_per_graph_and_give_each_estimators_numbers(feats):
    graphs = [graph_of(x, f"m{i}") for i, x in enumerate(feats)]
    terms = pairwise_terms({g.model: g for g in graphs})
    classes = [pseudo_classes(g.gram) for g in graphs]
    assert np.array_equal(terms.matrix("PL-LogME"), logme_matrix(graphs))
    assert np.array_equal(terms.matrix("PL-H-score"), h_score_matrix(graphs, classes))
    assert np.array_equal(terms.matrix("PL-NCE"), nce_matrix(graphs, classes))


def test_terms_offer_every_method_and_refuse_missing_ones(feats):
    gs = {f"m{i}": graph_of(x, f"m{i}") for i, x in enumerate(feats)}
    assert pairwise_terms(gs).methods == ALL_METHODS
    plain = pairwise_terms(gs, baselines=False)
    assert plain.methods == ("DEPARA", "DEPARA-V", "DEPARA-E")
    with pytest.raises(DeparaError, match="not computed"):
        plain.matrix("PL-LogME")


def test_baselines_survive_the_cache(tmp_path, feats):
    gs = {f"m{i}": graph_of(x, f"m{i}") for i, x in enumerate(feats)}
    terms = pairwise_terms(gs)
    cache = GraphCache(tmp_path)
    cache.store_terms("k" * 64, terms)
    back = cache.load_terms("k" * 64)
    assert isinstance(back, SimilarityTerms) and tuple(back.baselines) == BASELINES[1:]
    for m in BASELINES:
        assert np.array_equal(back.matrix(m, 0.5), terms.matrix(m, 0.5))
