"""Evaluating source rankings against measured transfer: P@K, R@K, PR points, rank correlations.

>>> gt = GroundTruth.from_matrix(["a", "b", "c", "d"], [[0, 3, 2, 1], [3, 0, 1, 2], [2, 1, 0, 3], [1, 2, 3, 0]])
>>> m = evaluate(gt.score_table(), gt, relevant=1)
>>> float(m.precision[0]), m.spearman
(1.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, spearmanr, weightedtau

from .errors import DeparaError

__all__ = [
    "GroundTruth",
    "RankingMetrics",
    "evaluate",
    "random_baseline",
    "oracle_scores",
    "TASKONOMY_TASKS",
    "TASKONOMY_TARGETS",
    "TASKONOMY_ALIASES",
    "taskonomy_ground_truth",
    "taskonomy_sort_gt",
    "ASSETS",
]

ASSETS = Path(__file__).resolve().parent.parent / "assets"

TASKONOMY_TASKS = (
    "autoencoder", "curvature", "denoise", "edge2d", "edge3d", "keypoint2d", "keypoint3d", "colorization",
    "reshade", "rgb2depth", "rgb2mist", "rgb2sfnorm", "room_layout", "segment25d", "segment2d",
    "vanishing_point", "segmentsemantic", "class_1000", "class_places", "inpainting_whole",
)  # fmt: skip
"""The 20 tasks of the DEPARA paper, in the index order of its ``sort_gt.npy``."""

TASKONOMY_TARGETS = tuple(t for t in TASKONOMY_TASKS if t not in ("colorization", "inpainting_whole"))
"""The 18 targets with measured first-order transfers."""

TASKONOMY_ALIASES = {
    "segmentsemantic_rb": "segmentsemantic",
    "vanishing_point_well_defined": "vanishing_point",
    "impainting_whole": "inpainting_whole",
}
"""Taskonomy's key names that differ from the paper's task names."""


@dataclass(frozen=True)
class GroundTruth:
    """Measured transfer: ``affinity.loc[source, target]``, higher = better (NaN = not measured)."""

    affinity: pd.DataFrame = field(repr=False)
    name: str = ""

    @classmethod
    def from_matrix(cls, tasks: Sequence[str], matrix, name: str = "") -> GroundTruth:
        return cls(pd.DataFrame(np.asarray(matrix, dtype=float), index=list(tasks), columns=list(tasks)), name)

    @classmethod
    def from_csv(cls, path: str | Path, value: str = "affinity", higher_is_better: bool = True, name: str = "") -> GroundTruth:
        """A CSV with columns ``source``, ``target`` and ``value`` (one row per measured pair)."""
        df = pd.read_csv(path)
        missing = {"source", "target", value} - set(df.columns)
        if missing:
            raise DeparaError(f"ground-truth CSV {Path(path).name!r} lacks column(s) {', '.join(sorted(missing))}", "give columns source,target," + value)
        mat = df.pivot_table(index="source", columns="target", values=value, aggfunc="mean")
        return cls(mat if higher_is_better else -mat, name or Path(path).stem)

    @property
    def targets(self) -> list[str]:
        return [t for t in self.affinity.columns if self.affinity[t].notna().sum() > 1]

    def candidates(self, target: str) -> list[str]:
        col = self.affinity[target]
        return [s for s in col.index if s != target and pd.notna(col[s])]

    def ranking(self, target: str) -> list[str]:
        """Sources for ``target``, best first (descending affinity, stable on ties)."""
        col = self.affinity[target].drop(labels=[target], errors="ignore").dropna()
        return list(col.sort_values(ascending=False, kind="stable").index)

    def score_table(self) -> dict[str, dict[str, float]]:
        """The ground truth itself as {target: {source: score}}: the oracle's scores."""
        return {t: {s: float(self.affinity.at[s, t]) for s in self.candidates(t)} for t in self.targets}


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


# ---- taskonomy -----------------------------------------------------------------------------
def taskonomy_ground_truth(budget: str = "16k") -> GroundTruth:
    """Taskonomy's measured first-order affinities (assets/taskonomy) over the paper's 20 tasks."""
    suffix = {"16k": "_16k", "1k": "_1k", "all": ""}
    if budget not in suffix:
        raise DeparaError(f"unknown taskonomy budget {budget!r}", "use '16k', '1k' or 'all'")
    df = pd.read_csv(ASSETS / "taskonomy" / f"all_affinities{suffix[budget]}.csv")
    df = df[df["order"] == 1].copy()
    df["source"] = df["sources"].map(lambda s: TASKONOMY_ALIASES.get(s, s))
    df["target"] = df["target"].map(lambda s: TASKONOMY_ALIASES.get(s, s))
    df = df[df["source"].isin(TASKONOMY_TASKS) & df["target"].isin(TASKONOMY_TASKS)]
    mat = df.pivot_table(index="source", columns="target", values="affinity", aggfunc="first")
    mat = mat.reindex(index=list(TASKONOMY_TASKS), columns=list(TASKONOMY_TASKS))
    return GroundTruth(mat, f"taskonomy-{budget}")


def taskonomy_sort_gt(budget: str = "16k") -> np.ndarray:
    """DEPARA's ``sort_gt`` array (18, 20): per target, itself then the 19 others best to worst."""
    gt = taskonomy_ground_truth(budget)
    index = {t: i for i, t in enumerate(TASKONOMY_TASKS)}
    return np.array([[index[t]] + [index[s] for s in gt.ranking(t)] for t in TASKONOMY_TARGETS], dtype=np.int64)
