"""The one ranking evaluator: source rankings against measured transfer.

For each target the top-``relevant`` measured sources are relevant (the paper's protocol). Per
target: P@K and R@K for every K, Spearman's ρ (the convention of :mod:`depara_core.compare.ranks`:
constant scores give 0), and on request Kendall's τ, weighted τ (scipy) and NDCG
(``sklearn.metrics.ndcg_score``, gains = affinity minus the target's lowest affinity, so that the
graded ground truth counts, not only its top-r). The ground truth's bookkeeping is done once, so
that re-scoring a zoo at another λ takes about a millisecond.

>>> gt = GroundTruth.from_matrix(["a", "b", "c", "d"], [[0, 3, 2, 1], [3, 0, 1, 2], [2, 1, 0, 3], [1, 2, 3, 0]])
>>> m = evaluate(gt.score_table(), gt, relevant=1)
>>> float(m.precision[0]), round(m.spearman, 9), m.ndcg
(1.0, 1.0, 1.0)
>>> ev = RankingEvaluator(("a", "b", "c", "d"), gt, relevant=1)
>>> float(ev.metrics(gt.affinity.to_numpy(), "oracle").precision[0])
1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, weightedtau
from sklearn.metrics import ndcg_score

from depara_core.compare.ranks import standardised_ranks
from depara_core.errors import DeparaError
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.evaluation.statistics import partial_spearman

__all__ = ["RankingMetrics", "RankingEvaluator", "evaluate", "random_baseline", "ground_truth_for"]


@dataclass(frozen=True)
class RankingMetrics:
    """Ranking quality of one method: P@K and R@K averaged over targets, and per-target rank
    correlations in ``per_target`` (their means are the properties)."""

    method: str
    k: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    relevant: int
    per_target: pd.DataFrame = field(repr=False)
    protocol: str = ""
    """The candidate and relevance protocol, in words (:attr:`RankingEvaluator.protocol`)."""

    def _mean(self, column: str) -> float:
        return float(self.per_target[column].mean()) if column in self.per_target else float("nan")

    @property
    def spearman(self) -> float:
        return self._mean("spearman")

    @property
    def kendall(self) -> float:
        return self._mean("kendall")

    @property
    def weighted_kendall(self) -> float:
        return self._mean("weighted_kendall")

    @property
    def ndcg(self) -> float:
        return self._mean("ndcg")

    def table(self) -> pd.DataFrame:
        """P@K and R@K for every K as a tidy table."""
        return pd.DataFrame({"method": self.method, "k": self.k, "precision": self.precision, "recall": self.recall})

    def summary(self) -> dict:
        return {
            "method": self.method,
            "relevant": self.relevant,
            "candidates": int(self.k[-1]) if len(self.k) else 0,
            "protocol": self.protocol,
            "spearman": self.spearman,
            "kendall": self.kendall,
            "weighted_kendall": self.weighted_kendall,
            "ndcg": self.ndcg,
            "k": self.k.tolist(),
            "precision_at_k": self.precision.tolist(),
            "recall_at_k": self.recall.tolist(),
        }


def ground_truth_for(names: Sequence[str], gt: GroundTruth) -> GroundTruth:
    """``gt`` restricted to (and ordered by) the models in ``names``; at least one target must remain."""
    aff = gt.affinity.reindex(index=list(names), columns=list(names))
    sub = GroundTruth(aff, gt.name)
    if len(sub.targets) < 1 or aff.notna().to_numpy().sum() < 2:
        raise DeparaError(
            f"the ground truth {gt.name!r} covers none of the chosen models as targets",
            f"name the models as in the ground truth ({', '.join(map(str, gt.affinity.columns[:6]))}, …)",
        )
    return sub


class RankingEvaluator:
    """Scores (source × target matrices over ``names``) against ``gt`` with the top-``relevant``
    measured sources of each target counted as relevant. ``targets`` limits the scored targets."""

    def __init__(self, names: Sequence[str], gt: GroundTruth, relevant: int = 5, targets: Sequence[str] | None = None) -> None:
        self.names = tuple(names)
        self.gt = ground_truth_for(self.names, gt)
        aff = self.gt.affinity
        self.targets = [t for t in self.gt.targets if targets is None or t in set(targets)]
        if not self.targets:
            raise DeparaError("no target of the ground truth has predicted scores", f"score at least one of: {', '.join(self.gt.targets[:10])}")
        self.cols = [self.names.index(t) for t in self.targets]
        self.cands = [np.array([self.names.index(s) for s in self.gt.candidates(t)], dtype=np.intp) for t in self.targets]
        self.kmax = min(len(c) for c in self.cands)
        if not 1 <= relevant <= self.kmax:
            raise DeparaError(f"relevant={relevant} must be between 1 and {self.kmax}", "choose a smaller number of relevant sources")
        self.relevant = relevant
        self.k = np.arange(1, self.kmax + 1)
        self.true_vals, self.true_ranks, self.top, self.best = [], [], [], []
        for t, c in zip(self.targets, self.cands):
            vals = aff.loc[[self.names[i] for i in c], t].to_numpy(dtype=float)
            self.true_vals.append(vals)
            self.true_ranks.append(standardised_ranks(vals))
            ranking = self.gt.ranking(t)
            top = set(ranking[:relevant])
            self.top.append(np.array([self.names[i] in top for i in c]))
            self.best.append(ranking[0])

    @property
    def candidates(self) -> int:
        """Candidate sources per target (the smallest count, when targets differ)."""
        return self.kmax

    @property
    def protocol(self) -> str:
        """What is counted, in words: the same sentence in the app and in the CLI's output."""
        counts = sorted({len(c) for c in self.cands})
        n = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
        return (f"{len(self.targets)} target(s); candidates: the other {n} compared models with measured transfer to the target; "
                f"relevant: the top {self.relevant} measured among them; random P@K = {self.relevant}/{n}")  # fmt: skip

    def metrics(self, scores: np.ndarray, method: str, full: bool = False) -> RankingMetrics:
        """P@K, R@K and Spearman of ``scores`` (rows: sources, columns: targets, over ``names``);
        ``full`` adds Kendall, weighted Kendall and NDCG per target."""
        s = np.asarray(scores, dtype=float)
        prec, rec, rows = [], [], []
        for t, j, c, tv, tr, top, best in zip(self.targets, self.cols, self.cands, self.true_vals, self.true_ranks, self.top, self.best):
            vals = s[c, j]
            if not np.isfinite(vals).all():
                missing = [self.names[c[i]] for i in np.flatnonzero(~np.isfinite(vals))[:5]]
                raise DeparaError(f"no predicted score (or not a finite one) for source(s) {', '.join(missing)} of target {t!r}", "score every candidate source with a finite number")
            order = np.argsort(-vals, kind="stable")
            hits = np.cumsum(top[order])[: self.kmax]
            prec.append(hits / self.k)
            rec.append(hits / self.relevant)
            row = {"target": t, "spearman": float(np.mean(standardised_ranks(vals) * tr)), f"P@{self.relevant}": hits[self.relevant - 1] / self.relevant}
            if full:
                row.update(
                    kendall=_or_zero(kendalltau(vals, tv).statistic),
                    weighted_kendall=_or_zero(weightedtau(vals, tv).statistic),
                    ndcg=_ndcg(tv, vals),
                    top_pred=self.names[c[order[0]]],
                    top_true=best,
                )
            rows.append(row)
        return RankingMetrics(method, self.k, np.mean(prec, axis=0), np.mean(rec, axis=0), self.relevant, pd.DataFrame(rows), self.protocol)

    def per_target(self, scores: np.ndarray, metric: str = "spearman") -> np.ndarray:
        """One number per target: ``"spearman"`` or ``"precision"`` (P@relevant)."""
        per = self.metrics(scores, "").per_target
        return per["spearman" if metric == "spearman" else f"P@{self.relevant}"].to_numpy(dtype=float)

    def partial_per_target(self, scores: np.ndarray, control: np.ndarray) -> np.ndarray:
        """Per target, Spearman's ρ of ``scores`` with the measured transfer after partialling out
        ``control`` (e.g. the target-agnostic prior) over the candidates (NaN where the control is missing)."""
        s, c = np.asarray(scores, dtype=float), np.asarray(control, dtype=float)
        out = []
        for j, cand, tv in zip(self.cols, self.cands, self.true_vals):
            ctl = c[cand, j]
            out.append(partial_spearman(s[cand, j], tv, ctl) if np.isfinite(ctl).all() else np.nan)
        return np.array(out)

    def oracle(self) -> np.ndarray:
        """The ground truth as scores (unmeasured pairs lowest)."""
        return np.nan_to_num(self.gt.affinity.to_numpy(dtype=float), nan=-np.inf)


def _or_zero(value: float) -> float:
    """Kendall's τ of a constant vector is undefined in scipy (NaN); the rank convention says 0."""
    return 0.0 if not np.isfinite(value) else float(value)


def _ndcg(true_vals: np.ndarray, pred: np.ndarray) -> float:
    gains = true_vals - true_vals.min()
    if not gains.any():
        return 0.0
    return float(ndcg_score(gains[None, :], pred[None, :]))


def evaluate(scores: Mapping[str, Mapping[str, float]], gt: GroundTruth, relevant: int = 5, method: str = "DEPARA") -> RankingMetrics:
    """Compare predicted ``scores[target][source]`` (higher = better source) with ``gt``: the
    :class:`RankingEvaluator` over the targets that have scores, with every metric.

    The candidates are the models that are both scored and measured, as in the app: measured
    sources that were not compared (e.g. seed twins in the ground truth) are not counted.
    """
    scored = {str(t) for t in scores} | {str(s) for row in scores.values() for s in row}
    names = [n for n in dict.fromkeys([*map(str, gt.affinity.index), *map(str, gt.affinity.columns)]) if n in scored]
    targets = [t for t in gt.targets if t in scores]
    if not targets:
        raise DeparaError("no target of the ground truth has predicted scores", f"score at least one of: {', '.join(gt.targets[:10])}")
    mat = np.full((len(names), len(names)), np.nan)
    index = {n: i for i, n in enumerate(names)}
    for t in targets:
        for s, v in scores[t].items():
            if s in index:
                mat[index[s], index[t]] = v
    ev = RankingEvaluator(names, gt, relevant, targets)
    return ev.metrics(mat, method, full=True)


def random_baseline(n_candidates: int, relevant: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected (K, P@K, R@K) of a uniformly random ranking: P@K = r/N, R@K = K/N."""
    ks = np.arange(1, n_candidates + 1)
    return ks, np.full(ks.shape, relevant / n_candidates), ks / n_candidates

