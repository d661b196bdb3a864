"""Hierarchical clustering of a similarity matrix: the task similarity tree, and the leaf order
heatmaps are drawn in. One distance convention, ``max(S_sym) − S_sym`` with ``S_sym = (S + Sᵀ)/2``,
and scipy's ``optimal_leaf_ordering`` so that neighbouring leaves are as similar as possible.

>>> cluster_order([[1.0, 0.1, 0.9], [0.1, 1.0, 0.0], [0.9, 0.0, 1.0]]).tolist()
[1, 0, 2]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering, to_tree
from scipy.spatial.distance import squareform

from depara_core.errors import DeparaError

__all__ = ["TaskTree", "task_tree", "similarity_linkage", "cluster_order"]


@dataclass(frozen=True)
class TaskTree:
    """A hierarchical clustering of tasks: scipy linkage, leaf order and labels."""

    linkage: np.ndarray
    order: tuple[int, ...]
    labels: tuple[str, ...]

    @property
    def ordered_labels(self) -> list[str]:
        return [self.labels[i] for i in self.order]

    def newick(self) -> str:
        """The tree in Newick format, branch lengths in linkage distance (for phylogeny viewers).

        scipy builds the tree (``to_tree``) but writes no Newick; this small writer quotes labels
        as the format requires (single quotes, an inner quote doubled).

        >>> task_tree([[1.0, 0.9, 0.1], [0.9, 1.0, 0.2], [0.1, 0.2, 1.0]], ["a", "b", "c's"]).newick()
        "('c''s':0.85,(b:0.1,a:0.1):0.75);"
        """
        root = to_tree(self.linkage)

        def write(node, parent_dist: float) -> str:
            length = f":{parent_dist - node.dist:.6g}"
            if node.is_leaf():
                return _newick_label(self.labels[node.id]) + length
            return f"({write(node.left, node.dist)},{write(node.right, node.dist)}){length}"

        return write(root, root.dist).rsplit(":", 1)[0] + ";"


def _newick_label(label: str) -> str:
    plain = all(ch.isalnum() or ch in "_-.#@" for ch in label) and label
    return label if plain else "'" + label.replace("'", "''") + "'"


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
        z = similarity_linkage(s, method)
    elif basis in ("rows", "columns"):
        x = s if basis == "rows" else s.T
        x = x / np.abs(x).max()
        z = optimal_leaf_ordering(linkage(x, method=method, metric="euclidean"), x)
    else:
        raise DeparaError(f"unknown basis {basis!r}", "use 'similarity', 'rows' or 'columns'")
    return TaskTree(z, tuple(int(i) for i in leaves_list(z)), tuple(labels))


def _distances(similarity: np.ndarray) -> np.ndarray:
    sym = (similarity + similarity.T) / 2
    d = np.clip(sym.max() - sym, 0.0, None)
    np.fill_diagonal(d, 0.0)
    return squareform(d, checks=False)


def similarity_linkage(similarity: np.ndarray, method: str = "average") -> np.ndarray:
    """scipy linkage of a square similarity matrix (distance ``max − S_sym``), leaves optimally ordered."""
    s = np.asarray(similarity, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise DeparaError(f"a similarity matrix must be square, got shape {s.shape}", "pass an (n, n) matrix")
    if not np.isfinite(s).all():
        raise DeparaError("the similarity matrix holds NaN or infinite values", "cluster finite similarities only")
    y = _distances(s)
    try:
        z = linkage(y, method=method)
    except ValueError as exc:
        raise DeparaError(f"cannot cluster with method {method!r} ({exc})", "use 'average', 'single' or 'complete'") from None
    return optimal_leaf_ordering(z, y) if len(s) > 2 else z


def cluster_order(similarity, method: str = "average") -> np.ndarray:
    """Leaf order of :func:`similarity_linkage`: similar items sit next to each other (heatmaps)."""
    s = np.asarray(similarity, dtype=np.float64)
    if s.ndim == 2 and s.shape[0] == s.shape[1] and s.shape[0] < 3:
        return np.arange(s.shape[0])
    return leaves_list(similarity_linkage(s, method))
