"""P@K, R@K and rank correlations against the taskonomy ground truth and known baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau, spearmanr

from depara_core.errors import DeparaError
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.evaluation.ranking import RankingEvaluator, evaluate, random_baseline
from depara_core.evaluation.taskonomy import TASKONOMY_TARGETS, taskonomy_ground_truth, taskonomy_sort_gt
from depara_core.resources import asset_dir


def test_sort_gt_is_rebuilt_exactly_from_the_committed_csv():
    published = np.load(asset_dir("depara") / "sort_gt.npy", allow_pickle=False)
    assert published.shape == (18, 20)
    np.testing.assert_array_equal(taskonomy_sort_gt("16k"), published)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top5_protocol_equals_the_original_codes_against_sort_gt(seed):
    """The original evaluation written out: for each of the 18 targets rank all 20 tasks by
    descending score, skip column 0 (the target itself, which scores highest), count hits among
    sort_gt's top 5 at K = 1..19, pool over targets. The library's evaluator gives the same P@K / R@K."""
    from depara_core.evaluation.taskonomy import TASKONOMY_TASKS

    sort_gt = np.load(asset_dir("depara") / "sort_gt.npy", allow_pickle=False)
    rng = np.random.default_rng(seed)
    s = rng.random((20, 20)) + 10 * np.eye(20)  # s[source, target]; each task most similar to itself
    rows = [TASKONOMY_TASKS.index(t) for t in TASKONOMY_TARGETS]
    aff = s[:, rows].T  # (18 targets, 20 tasks), as the original code holds it
    hits = np.array([[len(set(np.argsort(-aff[i])[1 : k + 1]) & set(sort_gt[i, 1:6])) for k in range(1, 20)] for i in range(18)])
    precision, recall = (hits / np.arange(1, 20)).mean(0), (hits / 5).mean(0)

    gt = taskonomy_ground_truth("16k")
    scores = {t: {src: float(s[a, TASKONOMY_TASKS.index(t)]) for a, src in enumerate(TASKONOMY_TASKS) if src != t} for t in TASKONOMY_TARGETS}
    m = evaluate(scores, gt, relevant=5)
    np.testing.assert_array_equal(m.k, np.arange(1, 20))
    np.testing.assert_allclose(m.precision, precision, atol=1e-12)
    np.testing.assert_allclose(m.recall, recall, atol=1e-12)


def test_taskonomy_ground_truth_shape():
    gt = taskonomy_ground_truth()
    assert gt.targets == list(TASKONOMY_TARGETS)
    assert all(len(gt.candidates(t)) == 19 for t in gt.targets)


def test_oracle_is_perfect():
    gt = taskonomy_ground_truth()
    m = evaluate(gt.score_table(), gt, relevant=5, method="oracle")
    np.testing.assert_allclose(m.precision[:5], 1.0)
    np.testing.assert_allclose(m.precision[5:], 5 / m.k[5:])
    np.testing.assert_allclose(m.recall[4:], 1.0)
    assert m.spearman == pytest.approx(1.0) and m.kendall == pytest.approx(1.0)


def test_random_rankings_average_to_the_expected_baseline():
    gt = taskonomy_ground_truth()
    rng = np.random.default_rng(0)
    ev = RankingEvaluator(tuple(gt.affinity.index), gt, relevant=5)
    runs = [ev.metrics(rng.random((20, 20)), "random") for _ in range(200)]
    ks, p, r = random_baseline(19, 5)
    mean_p = np.mean([m.precision for m in runs], axis=0)
    mean_r = np.mean([m.recall for m in runs], axis=0)
    np.testing.assert_allclose(mean_p, p, atol=0.025)
    np.testing.assert_allclose(mean_r, r, atol=0.025)
    assert abs(np.mean([m.spearman for m in runs])) < 0.025
    assert p[0] == pytest.approx(5 / 19) and r[-1] == pytest.approx(1.0)


def test_metrics_match_a_hand_computed_case():
    tasks = ["t", "a", "b", "c", "d"]
    mat = np.arange(25, dtype=float).reshape(5, 5)
    mat[:, 0] = [np.nan, 4, 3, 2, 1]  # affinity of each source to target "t"
    gt = GroundTruth.from_matrix(tasks, mat)
    pred = {"t": {"a": 0.1, "b": 0.9, "c": 0.5, "d": 0.3}}  # order b, c, d, a ; truth a, b, c, d
    m = evaluate(pred, gt, relevant=2)
    # top-2 relevant = {a, b}: hits along b, c, d, a -> 1, 1, 1, 2
    np.testing.assert_allclose(m.precision, [1 / 1, 1 / 2, 1 / 3, 2 / 4])
    np.testing.assert_allclose(m.recall, [0.5, 0.5, 0.5, 1.0])
    truth = [4, 3, 2, 1]
    vals = [0.1, 0.9, 0.5, 0.3]
    assert m.spearman == pytest.approx(spearmanr(vals, truth).statistic)
    assert m.kendall == pytest.approx(kendalltau(vals, truth).statistic)


def test_reversed_ranking_has_negative_correlation():
    gt = taskonomy_ground_truth()
    rev = {t: {s: -v for s, v in d.items()} for t, d in gt.score_table().items()}
    assert evaluate(rev, gt).spearman == pytest.approx(-1.0)


def test_candidates_are_the_compared_models_as_in_the_app():
    """The CLI's evaluate counts as candidates the models that are scored and measured, like the
    app's evaluator over the chosen models, and says so."""
    gt = taskonomy_ground_truth()
    chosen = ["autoencoder", "curvature", "denoise", "edge2d", "edge3d", "keypoint2d", "reshade", "rgb2depth"]
    rng = np.random.default_rng(4)
    m = rng.random((len(chosen), len(chosen)))
    scores = {t: {s: float(m[i, j]) for i, s in enumerate(chosen) if s != t} for j, t in enumerate(chosen) if t in gt.targets}
    cli = evaluate(scores, gt, relevant=3)
    app = RankingEvaluator(chosen, gt, relevant=3).metrics(m, "DEPARA")
    np.testing.assert_allclose(cli.precision, app.precision)
    assert cli.spearman == pytest.approx(app.spearman) and int(cli.k[-1]) == len(chosen) - 1
    assert cli.summary()["protocol"] == app.protocol and f"the other {len(chosen) - 1} compared models" in app.protocol


def test_bad_inputs(tmp_path):
    gt = taskonomy_ground_truth()
    with pytest.raises(DeparaError, match="no predicted score .* denoise of target 'curvature'"):
        evaluate({"curvature": {"edge2d": 1.0, "keypoint2d": 0.5}, "edge2d": {"denoise": 1.0, "curvature": 0.2, "keypoint2d": 0.1}}, gt, relevant=1)
    with pytest.raises(DeparaError, match="relevant=5 must be between 1 and 1"):
        evaluate({"curvature": {"denoise": 1.0}}, gt)  # one compared source: one candidate
    with pytest.raises(DeparaError, match="relevant=0"):
        evaluate(gt.score_table(), gt, relevant=0)
    with pytest.raises(DeparaError, match="no target"):
        evaluate({"nothing": {}}, gt)
    bad = tmp_path / "gt.csv"
    pd.DataFrame({"source": ["a"], "target": ["b"]}).to_csv(bad, index=False)
    with pytest.raises(DeparaError, match="lacks column"):
        GroundTruth.from_csv(bad)


def test_ground_truth_from_csv_with_losses(tmp_path):
    path = tmp_path / "gt.csv"
    rows = [("a", "b", 0.1), ("c", "b", 0.5), ("b", "a", 0.2), ("c", "a", 0.3), ("a", "c", 0.9), ("b", "c", 0.4)]
    pd.DataFrame(rows, columns=["source", "target", "loss"]).to_csv(path, index=False)
    gt = GroundTruth.from_csv(path, value="loss", higher_is_better=False)
    assert gt.ranking("b") == ["a", "c"] and gt.ranking("c") == ["b", "a"]


def test_ground_truth_digest_is_a_content_key():
    """Two tables with the same name, size and sum must not share a key (they did: name:len:sum)."""
    a = GroundTruth.from_matrix(["x", "y", "z"], [[0, 1, 2], [2, 0, 1], [1, 2, 0]], name="upload.csv")
    b = GroundTruth.from_matrix(["x", "y", "z"], [[0, 2, 1], [1, 0, 2], [2, 1, 0]], name="upload.csv")
    assert float(a.affinity.sum().sum()) == float(b.affinity.sum().sum()) and a.digest != b.digest
    assert a.digest == GroundTruth.from_matrix(["x", "y", "z"], a.affinity.to_numpy(), name="other").digest


def test_ndcg_uses_the_graded_ground_truth():
    """NDCG by hand: gains = affinity − min over the candidates, discounted by log2(rank + 1)."""
    gt = GroundTruth.from_matrix(["t", "a", "b", "c", "d"], np.full((5, 5), np.nan))
    gt.affinity.loc[["a", "b", "c", "d"], "t"] = [4.0, 3.0, 1.0, 0.5]
    pred = {"t": {"a": 0.1, "b": 0.9, "c": 0.5, "d": 0.7}}  # predicted order: b, d, c, a
    m = evaluate(pred, gt, relevant=1)
    order_gains = np.array([2.5, 0.0, 0.5, 3.5])  # gains of b, d, c, a
    disc = 1 / np.log2(np.arange(2, 6))
    ideal = np.sort(np.array([3.5, 2.5, 0.5, 0.0]))[::-1]
    assert m.ndcg == pytest.approx((order_gains * disc).sum() / (ideal * disc).sum())


@pytest.mark.parametrize(
    "csv, pattern",
    [
        (b"source,target,affinity\na,b,1\na,c,inf\nb,a,2\n", "not finite numbers"),
        (b"source,target,affinity\na,b,1\na,b,2\nb,a,2\n", "different values for the same pair"),
        (b"source,target,affinity\na,b,1\nc,b,1\nb,a,2\n", "same value for target"),
        (b"source,target\na,b\n", "lacks column"),
        (b"\x00\xff\xfe", "cannot be read|lacks column"),
        (b"source,target,affinity\na,b,x\nb,a,1\n", "not finite numbers"),
    ],
)
def test_bad_ground_truth_csvs_say_what_to_fix(csv, pattern):
    with pytest.raises(DeparaError, match=pattern):
        GroundTruth.from_csv(csv)
    good = GroundTruth.from_csv(b"source,target,affinity\na,b,1\na,b,1\nc,b,2\nb,a,2\nc,a,1\n")
    assert good.affinity.loc["c", "b"] == 2 and np.isfinite(good.affinity.loc["a", "b"])
