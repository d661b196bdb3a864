"""The one rank convention: scipy's Spearman on real data, 0 for constant input on every path."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from depara_core.compare.layers import LayerScores
from depara_core.compare.pairwise import edge_similarity
from depara_core.compare.ranks import average_ranks, spearman, spearman_matrix, standardised_ranks
from depara_core.compare.terms import pairwise_terms
from depara_core.engine.graph import Graph
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.evaluation.layers import layer_agreement
from depara_core.evaluation.ranking import RankingEvaluator, evaluate


def test_spearman_equals_scipy_with_ties():
    rng = np.random.default_rng(1)
    for _ in range(20):
        a, b = rng.integers(0, 5, 12).astype(float), rng.normal(size=12)
        assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    rows = rng.integers(0, 4, (5, 9)).astype(float)
    ref = spearmanr(rows, axis=1).statistic
    np.testing.assert_allclose(spearman_matrix(rows), ref, atol=1e-12)


def test_constant_input_gives_zero_never_nan_or_an_error():
    b = np.array([0.2, 0.3, 0.3, 0.8, 0.1, 0.9])
    assert spearman(np.ones(6), b) == 0.0 and not standardised_ranks(np.ones(6)).any()
    m = spearman_matrix(np.stack([np.ones(6), b, -b]))
    assert m[0, 1] == 0.0 and m[1, 2] == pytest.approx(-1.0) and np.isfinite(m).all()


def _flat_graph(name: str, n: int = 5) -> Graph:
    """A graph whose probes all have the same direction (every edge 1) but distinct feature sums."""
    base = np.arange(1, n + 1, dtype=float)
    feats = np.outer(base, [1.0, 2.0, 3.0])
    return Graph(name, "l", tuple(map(str, range(n))), "d", np.ones((n, 4), np.float16) / 2, np.ones(n), (4,), feats @ feats.T, feats.sum(1), 3)


def test_degenerate_graphs_agree_across_pairwise_and_zoo_paths():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(5, 3))
    other = Graph("b", "l", tuple(map(str, range(5))), "d", rng.normal(size=(5, 4)).astype(np.float16), np.ones(5), (4,), feats @ feats.T, feats.sum(1), 3)
    flat = _flat_graph("a")
    terms = pairwise_terms({"a": flat, "b": other}, baselines=False)
    assert edge_similarity(flat, other) == terms.s_E[0, 1] == 0.0


def test_evaluation_and_layer_agreement_use_the_same_convention():
    gt = GroundTruth.from_matrix(["a", "b", "c", "d"], [[0, 3, 2, 1], [3, 0, 1, 2], [2, 1, 0, 3], [1, 2, 3, 0]])
    constant = np.ones((4, 4))
    ev = RankingEvaluator(("a", "b", "c", "d"), gt, relevant=1)
    assert (ev.per_target(constant) == 0).all()
    m = evaluate({t: {s: 1.0 for s in gt.candidates(t)} for t in gt.targets}, gt, relevant=1)
    assert m.spearman == 0.0 and m.kendall == 0.0
    scores = LayerScores("s", "t", ("l1", "l2", "l3", "l4"), np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4]))
    assert layer_agreement(scores, 1.0, np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(1.0)


@pytest.mark.parametrize(("shape", "axis"), [((13,), 0), ((6, 11), 1), ((6, 11), 0), ((3, 4, 7), 1), ((2, 5000), -1)])
def test_average_ranks_equal_scipys_rankdata_with_ties_along_any_axis(shape, axis):
    from scipy.stats import rankdata

    rng = np.random.default_rng(sum(shape))
    values = rng.integers(0, 4, shape).astype(float) + (rng.random(shape) < 0.3) * rng.random(shape)  # many ties, some not
    np.testing.assert_array_equal(average_ranks(values, axis).numpy(), rankdata(values, axis=axis))
    np.testing.assert_allclose(standardised_ranks(values, axis), _scipy_standardised(rankdata(values, axis=axis), axis), atol=1e-12)


def _scipy_standardised(r: np.ndarray, axis: int) -> np.ndarray:
    r = r - r.mean(axis=axis, keepdims=True)
    return r / np.sqrt(np.mean(r * r, axis=axis, keepdims=True))


def test_average_ranks_of_nan_slices_are_nan_as_in_scipy_and_read_only_input_is_not_copied_into():
    from scipy.stats import rankdata

    values = np.array([[1.0, np.nan, 2.0], [3.0, 1.0, 1.0]])
    values.flags.writeable = False
    np.testing.assert_array_equal(average_ranks(values, 1).numpy(), rankdata(values, axis=1))
    assert average_ranks(np.empty((2, 0)), 1).shape == (2, 0)

