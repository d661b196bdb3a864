"""λ suggested by leave-one-target-out cross-validation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from depara_core.compare.terms import LAMBDA_METHODS, SimilarityTerms
from depara_core.errors import DeparaError
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.evaluation.ranking import RankingEvaluator

__all__ = ['LAMBDA_GRID', 'LambdaSuggestion', 'suggest_lambda']


LAMBDA_GRID = np.round(np.concatenate([np.linspace(0.0, 2.0, 21), [2.5, 3.0, 4.0, 5.0, 7.5, 10.0]]), 3)
"""λ values tried when suggesting one."""


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
    method: str = "DEPARA",
) -> LambdaSuggestion:
    """Cross-validated λ: for each target, the λ that scores best on the other targets is applied to it.

    ``method`` is one of the λ methods (:data:`~depara_core.compare.terms.LAMBDA_METHODS`).
    """
    if method not in LAMBDA_METHODS:
        raise DeparaError(f"{method} does not depend on λ", f"choose one of: {', '.join(LAMBDA_METHODS)}")
    ev = gt if isinstance(gt, RankingEvaluator) else RankingEvaluator(terms.names, gt, relevant)
    grid = np.asarray(grid, dtype=float)
    table = np.array([ev.per_target(terms.matrix(method, lam), metric) for lam in grid])  # (λ, targets)
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
