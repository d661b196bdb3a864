"""Evaluating source rankings against measured transfer: P@K, R@K, PR points, rank correlations.

>>> gt = GroundTruth.from_matrix(["a", "b", "c", "d"], [[0, 3, 2, 1], [3, 0, 1, 2], [2, 1, 0, 3], [1, 2, 3, 0]])
>>> m = evaluate(gt.score_table(), gt, relevant=1)
>>> float(m.precision[0]), m.spearman
(1.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, spearmanr, weightedtau

from depara_core.compare.ranks import standardised_ranks
from depara_core.errors import DeparaError
from depara_core.evaluation.ground_truth import GroundTruth

__all__ = ['RankingMetrics', 'evaluate', 'random_baseline', 'oracle_scores', 'ground_truth_for', 'MethodMetrics', 'RankingEvaluator']


@dataclass(frozen=True)
class RankingMetrics:
    """Ranking quality of one method, averaged over targets (``per_target`` has the details)."""

    method: str
    k: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    spearman: float
    kendall: float
    weighted_kendall: float
    relevant: int
    per_target: pd.DataFrame = field(repr=False)

    def table(self) -> pd.DataFrame:
        """P@K and R@K for every K as a tidy table."""
        return pd.DataFrame({"method": self.method, "k": self.k, "precision": self.precision, "recall": self.recall})

    def summary(self) -> dict:
        return {
            "method": self.method,
            "relevant": self.relevant,
            "spearman": self.spearman,
            "kendall": self.kendall,
            "weighted_kendall": self.weighted_kendall,
            "k": self.k.tolist(),
            "precision_at_k": self.precision.tolist(),
            "recall_at_k": self.recall.tolist(),
        }


def evaluate(scores: Mapping[str, Mapping[str, float]], gt: GroundTruth, relevant: int = 5, method: str = "DEPARA") -> RankingMetrics:
    """Compare predicted ``scores[target][source]`` (higher = better source) with ``gt``.

    For each target the top-``relevant`` ground-truth sources are relevant; P@K and R@K for every
    K = 1..N-1 are averaged over targets, as are Spearman, Kendall and weighted Kendall (scipy)
    between predicted scores and measured affinities.
    """
    targets = [t for t in gt.targets if t in scores]
    if not targets:
        raise DeparaError("no target of the ground truth has predicted scores", f"score at least one of: {', '.join(gt.targets[:10])}")
    n_cand = {t: len(gt.candidates(t)) for t in targets}
    kmax = min(n_cand.values())
    if relevant < 1 or relevant > kmax:
        raise DeparaError(f"relevant={relevant} must be between 1 and {kmax}", "choose a smaller number of relevant sources")
    ks = np.arange(1, kmax + 1)
    prec, rec, rows = [], [], []
    for t in targets:
        cands = gt.candidates(t)
        missing = [s for s in cands if s not in scores[t]]
        if missing:
            raise DeparaError(f"no predicted score for source(s) {', '.join(missing[:5])} of target {t!r}", "score every candidate source")
        pred_vals = np.array([scores[t][s] for s in cands], dtype=float)
        true_vals = gt.affinity.loc[cands, t].to_numpy(dtype=float)
        pred_order = [cands[i] for i in np.argsort(-pred_vals, kind="stable")]
        top_true = set(gt.ranking(t)[:relevant])
        hits = np.cumsum([s in top_true for s in pred_order])[:kmax]
        prec.append(hits / ks)
        rec.append(hits / relevant)
        rows.append(
            {
                "target": t,
                "spearman": spearmanr(pred_vals, true_vals).statistic,
                "kendall": kendalltau(pred_vals, true_vals).statistic,
                "weighted_kendall": weightedtau(pred_vals, true_vals).statistic,
                f"P@{relevant}": hits[relevant - 1] / relevant,
                "top_pred": pred_order[0],
                "top_true": gt.ranking(t)[0],
            }
        )
    per = pd.DataFrame(rows)
    return RankingMetrics(
        method, ks, np.mean(prec, axis=0), np.mean(rec, axis=0), float(per["spearman"].mean()),
        float(per["kendall"].mean()), float(per["weighted_kendall"].mean()), relevant, per,
    )  # fmt: skip


def random_baseline(n_candidates: int, relevant: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected (K, P@K, R@K) of a uniformly random ranking: P@K = r/N, R@K = K/N."""
    ks = np.arange(1, n_candidates + 1)
    return ks, np.full(ks.shape, relevant / n_candidates), ks / n_candidates


def oracle_scores(gt: GroundTruth) -> dict[str, dict[str, float]]:
    """Scores that reproduce the ground truth (P@K = 1 for K ≤ r)."""
    return gt.score_table()


def ground_truth_for(names: Sequence[str], gt: GroundTruth) -> GroundTruth:
    """``gt`` restricted to (and ordered by) the models in ``names``; at least two targets must remain."""
    aff = gt.affinity.reindex(index=list(names), columns=list(names))
    sub = GroundTruth(aff, gt.name)
    if len(sub.targets) < 1 or aff.notna().to_numpy().sum() < 2:
        raise DeparaError(
            f"the ground truth {gt.name!r} covers none of the chosen models as targets",
            f"name the models as in the ground truth ({', '.join(map(str, gt.affinity.columns[:6]))}, …)",
        )
    return sub


@dataclass(frozen=True)
class MethodMetrics:
    """One method's P@K and R@K (mean over targets) and per-target Spearman and P@r."""

    method: str
    k: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    per_target: pd.DataFrame = field(repr=False)

    @property
    def spearman(self) -> float:
        return float(self.per_target["spearman"].mean())


class RankingEvaluator:
    """Scores (source × target matrices over ``names``) against ``gt`` with the top-``relevant``
    measured sources of each target counted as relevant (the paper's protocol)."""

    def __init__(self, names: Sequence[str], gt: GroundTruth, relevant: int = 5) -> None:
        self.names = tuple(names)
        self.gt = ground_truth_for(self.names, gt)
        aff = self.gt.affinity
        self.targets = [t for t in self.gt.targets]
        self.cols = [self.names.index(t) for t in self.targets]
        self.cands = [np.array([self.names.index(s) for s in self.gt.candidates(t)], dtype=np.intp) for t in self.targets]
        self.kmax = min(len(c) for c in self.cands)
        if not 1 <= relevant <= self.kmax:
            raise DeparaError(f"relevant={relevant} must be between 1 and {self.kmax}", "choose fewer relevant sources")
        self.relevant = relevant
        self.k = np.arange(1, self.kmax + 1)
        self.true_ranks = []
        self.top = []
        for t, c in zip(self.targets, self.cands):
            true_vals = aff.loc[[self.names[i] for i in c], t].to_numpy(dtype=float)
            self.true_ranks.append(_std_ranks(true_vals))
            top = set(self.gt.ranking(t)[:relevant])
            self.top.append(np.array([self.names[i] in top for i in c]))

    def metrics(self, scores: np.ndarray, method: str) -> MethodMetrics:
        """P@K, R@K and Spearman of ``scores`` (rows: sources, columns: targets, over ``names``)."""
        s = np.asarray(scores, dtype=float)
        prec, rec, rows = [], [], []
        for t, j, c, tr, top in zip(self.targets, self.cols, self.cands, self.true_ranks, self.top):
            vals = s[c, j]
            hits = np.cumsum(top[np.argsort(-vals, kind="stable")])[: self.kmax]
            prec.append(hits / self.k)
            rec.append(hits / self.relevant)
            pr = _std_ranks(vals)
            rho = float(np.mean(pr * tr)) if pr is not None and tr is not None else np.nan
            rows.append({"target": t, "spearman": rho, f"P@{self.relevant}": hits[self.relevant - 1] / self.relevant})
        return MethodMetrics(method, self.k, np.mean(prec, axis=0), np.mean(rec, axis=0), pd.DataFrame(rows))

    def per_target(self, scores: np.ndarray, metric: str = "spearman") -> np.ndarray:
        """One number per target: ``"spearman"`` or ``"precision"`` (P@relevant)."""
        per = self.metrics(scores, "").per_target
        return per["spearman" if metric == "spearman" else f"P@{self.relevant}"].to_numpy(dtype=float)

    def oracle(self) -> np.ndarray:
        return np.nan_to_num(self.gt.affinity.to_numpy(dtype=float), nan=-np.inf)


def _std_ranks(values: np.ndarray) -> np.ndarray | None:
    """Standardised ranks, or None when the values are all equal (Spearman undefined: NaN)."""
    r = standardised_ranks(values)
    return r if r.any() else None
