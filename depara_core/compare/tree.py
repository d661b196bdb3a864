"""The task similarity tree: hierarchical clustering of a score matrix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.cluster.hierarchy import leaves_list, linkage
from scipy.spatial.distance import squareform

from depara_core.errors import DeparaError

__all__ = ['TaskTree', 'task_tree']


@dataclass(frozen=True)
class TaskTree:
    """A hierarchical clustering of tasks: scipy linkage, leaf order and labels."""

    linkage: np.ndarray
    order: tuple[int, ...]
    labels: tuple[str, ...]

    @property
    def ordered_labels(self) -> list[str]:
        return [self.labels[i] for i in self.order]


def task_tree(
    scores: np.ndarray,
    labels: Sequence[str],
    method: str = "average",
    basis: Literal["similarity", "rows", "columns"] = "similarity",
) -> TaskTree:
    """Cluster tasks by a score matrix (rows: sources, columns: targets).

    ``basis="similarity"``: distance = max(S_sym) − S_sym with S_sym = (S + Sᵀ)/2;
    ``"rows"`` / ``"columns"``: Euclidean distance between the rows / columns of S scaled by its
    maximum (the original code's convention, with ``method="single"``).
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (len(labels), len(labels)):
        raise DeparaError(f"score matrix {s.shape} does not match {len(labels)} labels", "pass one label per row")
    if basis == "similarity":
        sym = (s + s.T) / 2
        d = sym.max() - sym
        np.fill_diagonal(d, 0.0)
        z = linkage(squareform(np.clip(d, 0, None), checks=False), method=method)
    elif basis in ("rows", "columns"):
        x = s if basis == "rows" else s.T
        z = linkage(x / np.abs(x).max(), method=method, metric="euclidean")
    else:
        raise DeparaError(f"unknown basis {basis!r}", "use 'similarity', 'rows' or 'columns'")
    return TaskTree(z, tuple(int(i) for i in leaves_list(z)), tuple(labels))
