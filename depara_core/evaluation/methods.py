"""Every compared method on one ground truth, as tidy tables for display."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from depara_core.compare.terms import LAMBDA_METHODS, SimilarityTerms
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.evaluation.ranking import RankingEvaluator, random_baseline

__all__ = ["Evaluation", "evaluate_methods"]




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
    methods: Sequence[str] | None = None,
    baselines: bool = True,
) -> Evaluation:
    """``methods`` (default: every method the terms hold; the λ methods at ``lam``), and random and
    oracle when ``baselines``."""
    ev = gt if isinstance(gt, RankingEvaluator) else RankingEvaluator(terms.names, gt, relevant)
    results = []
    for method in terms.methods if methods is None else methods:
        if method not in terms.methods:
            continue
        results.append(ev.metrics(terms.matrix(method, lam), f"{method} (λ={lam:g})" if method in LAMBDA_METHODS else method))
    if baselines:
        results.append(ev.metrics(ev.oracle(), "oracle"))
    curves = [pd.DataFrame({"method": r.method, "k": r.k, "precision": r.precision, "recall": r.recall}) for r in results]
    summary = [{"method": r.method, "spearman": r.spearman, f"P@{ev.relevant}": r.precision[ev.relevant - 1], f"R@{ev.relevant}": r.recall[ev.relevant - 1]} for r in results]
    if baselines:
        ks, rp, rr = random_baseline(ev.kmax, ev.relevant)
        curves.insert(len(curves) - 1, pd.DataFrame({"method": "random", "k": ks, "precision": rp, "recall": rr}))
        summary.insert(len(summary) - 1, {"method": "random", "spearman": 0.0, f"P@{ev.relevant}": rp[ev.relevant - 1], f"R@{ev.relevant}": rr[ev.relevant - 1]})
    return Evaluation(ev.relevant, pd.concat(curves, ignore_index=True), pd.DataFrame(summary))
