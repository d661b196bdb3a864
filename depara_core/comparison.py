"""Fast ranking metrics for live use: every method against measured transfer, a λ suggested by
cross-validation over targets, and measured per-layer transfer for layer selection.

:func:`depara_core.evaluation.evaluate` is the reference (it adds Kendall and weighted Kendall);
:class:`RankingEvaluator` computes the same P@K, R@K and Spearman with the ground truth's
bookkeeping done once, so that a λ change re-scores a 20-model zoo in about a millisecond.

>>> import numpy as np
>>> from depara_core.evaluation import GroundTruth
>>> from depara_core.selection import SimilarityTerms
>>> gt = GroundTruth.from_matrix(["a", "b", "c", "d"], [[0, 3, 2, 1], [3, 0, 1, 2], [2, 1, 0, 3], [1, 2, 3, 0]])
>>> ev = RankingEvaluator(("a", "b", "c", "d"), gt, relevant=1)
>>> ev.metrics(gt.affinity.to_numpy(), "oracle").precision[0]
np.float64(1.0)
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from .errors import DeparaError
from .evaluation import GroundTruth, random_baseline
from .selection import LayerScores, SimilarityTerms
from .similarity import standardised_ranks

__all__ = [
    "LAMBDA_GRID",
    "COMPARED_METHODS",
    "MethodMetrics",
    "RankingEvaluator",
    "Evaluation",
    "evaluate_methods",
    "LambdaSuggestion",
    "suggest_lambda",
    "ground_truth_for",
    "LayerTruth",
    "layer_agreement",
]

LAMBDA_GRID = np.round(np.concatenate([np.linspace(0.0, 2.0, 21), [2.5, 3.0, 4.0, 5.0, 7.5, 10.0]]), 3)
"""λ values tried when suggesting one."""

COMPARED_METHODS = ("DEPARA", "DEPARA-V", "DEPARA-E", "RSA", "CKA")


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


@dataclass(frozen=True)
class Evaluation:
    """Every compared method on one ground truth: ``curves`` (method, k, precision, recall) and
    ``summary`` (method, Spearman, P@r, R@r), random and oracle included."""

    relevant: int
    curves: pd.DataFrame
    summary: pd.DataFrame

    def pr_points(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{method: (recall, precision)} for :func:`depara_core.plots.pr_curve`."""
        return {m: (g["recall"].to_numpy(), g["precision"].to_numpy()) for m, g in self.curves.groupby("method", sort=False)}


def evaluate_methods(
    terms: SimilarityTerms,
    gt: GroundTruth | RankingEvaluator,
    lam: float,
    relevant: int = 5,
    methods: Sequence[str] = COMPARED_METHODS,
    baselines: bool = True,
) -> Evaluation:
    """DEPARA at ``lam``, DEPARA-V, DEPARA-E, RSA, CKA (those computed), and random and oracle when
    ``baselines``."""
    ev = gt if isinstance(gt, RankingEvaluator) else RankingEvaluator(terms.names, gt, relevant)
    results = []
    for method in methods:
        if method in ("RSA", "CKA") and (terms.rsa if method == "RSA" else terms.cka) is None:
            continue
        results.append(ev.metrics(terms.matrix(method, lam), f"DEPARA (λ={lam:g})" if method == "DEPARA" else method))
    if baselines:
        results.append(ev.metrics(ev.oracle(), "oracle"))
    curves = [pd.DataFrame({"method": r.method, "k": r.k, "precision": r.precision, "recall": r.recall}) for r in results]
    summary = [{"method": r.method, "spearman": r.spearman, f"P@{ev.relevant}": r.precision[ev.relevant - 1], f"R@{ev.relevant}": r.recall[ev.relevant - 1]} for r in results]
    if baselines:
        ks, rp, rr = random_baseline(ev.kmax, ev.relevant)
        curves.insert(len(curves) - 1, pd.DataFrame({"method": "random", "k": ks, "precision": rp, "recall": rr}))
        summary.insert(len(summary) - 1, {"method": "random", "spearman": 0.0, f"P@{ev.relevant}": rp[ev.relevant - 1], f"R@{ev.relevant}": rr[ev.relevant - 1]})
    return Evaluation(ev.relevant, pd.concat(curves, ignore_index=True), pd.DataFrame(summary))


@dataclass(frozen=True)
class LambdaSuggestion:
    """λ chosen on all targets, with its leave-one-target-out estimate (``cv_score``) and the folds."""

    lam: float
    metric: str
    cv_score: float
    grid: np.ndarray
    curve: np.ndarray
    folds: pd.DataFrame

    @property
    def text(self) -> str:
        spread = self.folds["lam"]
        return (
            f"λ = {self.lam:g} maximises mean {self.metric} over the targets ({self.curve.max():.3f}); "
            f"chosen without each target in turn, λ ranged {spread.min():g}–{spread.max():g} and scored "
            f"{self.cv_score:.3f} on the held-out target (leave-one-target-out)."
        )


def suggest_lambda(
    terms: SimilarityTerms,
    gt: GroundTruth | RankingEvaluator,
    grid: Sequence[float] = LAMBDA_GRID,
    metric: str = "spearman",
    relevant: int = 5,
) -> LambdaSuggestion:
    """Cross-validated λ: for each target, the λ that scores best on the other targets is applied to it."""
    ev = gt if isinstance(gt, RankingEvaluator) else RankingEvaluator(terms.names, gt, relevant)
    grid = np.asarray(grid, dtype=float)
    table = np.array([ev.per_target(terms.combined(lam), metric) for lam in grid])  # (λ, targets)
    table = np.nan_to_num(table, nan=0.0)
    curve = table.mean(axis=1)
    rows = []
    n = table.shape[1]
    for t in range(n):
        rest = (table.sum(axis=1) - table[:, t]) / max(n - 1, 1)
        best = int(np.argmax(rest))
        rows.append({"target": ev.targets[t], "lam": float(grid[best]), "held_out": float(table[best, t])})
    folds = pd.DataFrame(rows)
    return LambdaSuggestion(float(grid[int(np.argmax(curve))]), metric, float(folds["held_out"].mean()), grid, curve, folds)


# ---- layer ground truth --------------------------------------------------------------------
@dataclass(frozen=True)
class LayerTruth:
    """Measured transfer per (source, target, layer), e.g. accuracy after fine-tuning from that layer."""

    table: pd.DataFrame
    name: str = "measured transfer"

    @classmethod
    def from_csv(cls, source: str | Path | bytes, value: str = "", higher_is_better: bool | None = None, name: str = "") -> LayerTruth:
        """A CSV with columns ``source``, ``target``, ``layer`` and a value column (see :meth:`from_frame`)."""
        try:
            df = pd.read_csv(io.BytesIO(source) if isinstance(source, bytes) else source)
        except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise DeparaError(f"the layer ground truth is not a readable CSV ({str(exc)[:200]})", "upload a CSV with columns source,target,layer,value") from None
        return cls.from_frame(df, value, higher_is_better, name)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, value: str = "", higher_is_better: bool | None = None, name: str = "") -> LayerTruth:
        """Rows of (source, target, layer, value). The value column is ``value``, else ``loss`` (lower is
        better), else the only other numeric column; repeated rows (seeds) are averaged."""
        missing = {"source", "target", "layer"} - set(df.columns)
        others = [c for c in df.columns if c not in ("source", "target", "layer")]
        numeric = [c for c in others if pd.api.types.is_numeric_dtype(df[c])]
        col = value or next((c for c in ("value", "loss") if c in others), numeric[0] if len(numeric) == 1 else (others[0] if len(others) == 1 else ""))
        if missing or not col or col not in df.columns:
            raise DeparaError(
                f"the layer ground truth has columns {', '.join(map(str, df.columns))}",
                "give columns source,target,layer,value (one row per measured layer)",
            )
        vals = pd.to_numeric(df[col], errors="coerce")
        if vals.isna().all():
            raise DeparaError(f"column {col!r} of the layer ground truth holds no numbers", "put the measured transfer there")
        better_high = (col != "loss") if higher_is_better is None else higher_is_better
        out = pd.DataFrame({"source": df["source"].astype(str), "target": df["target"].astype(str), "layer": df["layer"].astype(str), "value": vals if better_high else -vals})
        return cls(out, name or (col if better_high else f"−{col}"))

    def series(self, source: str, target: str, layers: Sequence[str]) -> np.ndarray | None:
        """Measured values for ``layers`` (NaN where not measured); None when the pair has none."""
        rows = self.table[(self.table["source"] == source) & (self.table["target"] == target)]
        if rows.empty:
            return None
        by_layer = rows.groupby("layer")["value"].mean()
        return np.array([by_layer.get(layer, np.nan) for layer in layers], dtype=float)


def layer_agreement(scores: LayerScores, lam: float, measured: np.ndarray) -> float:
    """Spearman between s(λ) per layer and the measured transfer (layers measured only; NaN if < 3)."""
    s = scores.combined(lam)
    ok = np.isfinite(measured)
    if ok.sum() < 3 or np.ptp(measured[ok]) == 0 or np.ptp(s[ok]) == 0:
        return float("nan")
    return float(spearmanr(s[ok], measured[ok]).statistic)
