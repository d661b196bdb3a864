"""A layer's per-probe pieces: what the engine holds before a Gram matrix is formed, what probe
shards compute separately, and what a stopped run keeps so that the next run resumes at its batch.

Nodes, their norms, the unit feature rows and their norms, and the feature sums are all per probe,
so the first ``done`` probes' pieces (:meth:`LayerPieces.head`) are exactly what a run over the whole
set holds after those probes: a resumed run fills them in and goes on from probe ``done``.

>>> import numpy as np, torch
>>> p = LayerPieces("conv", np.zeros((4, 6), np.float16), np.ones(4), torch.zeros(4, 3, dtype=torch.float16),
...                 torch.ones(4, dtype=torch.float64), np.zeros(4), (6,), 3, False, (), 2**20)
>>> h = p.head(2)
>>> h.done, h.units.shape, h.fits(p)
(2, torch.Size([2, 3]), True)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import torch

__all__ = ["LayerPieces", "Checkpoints"]


@dataclass(frozen=True)
class LayerPieces:
    """One layer's per-probe results before its Gram matrix is formed. ``units`` are the unit feature
    rows (float16; a tensor, or a memory-mapped array when spilled) and ``feature_norms`` their norms."""

    layer: str
    nodes: np.ndarray
    node_norms: np.ndarray
    units: torch.Tensor | np.ndarray
    feature_norms: torch.Tensor
    feature_sums: np.ndarray
    node_shape: tuple[int, ...]
    feature_dim: int
    sketched: bool
    notes: tuple[str, ...]
    block_bytes: int

    @property
    def done(self) -> int:
        """How many probes these pieces hold."""
        return len(self.node_norms)

    def head(self, done: int) -> LayerPieces:
        """The pieces of the first ``done`` probes (views, no copies)."""
        return replace(self, nodes=self.nodes[:done], node_norms=self.node_norms[:done], units=self.units[:done],
                       feature_norms=self.feature_norms[:done], feature_sums=self.feature_sums[:done])  # fmt: skip

    def fits(self, run: LayerPieces) -> bool:
        """Whether these saved pieces can seed ``run`` (the stores of a run over the whole probe set):
        the same map size, sketching and stored feature width, and no more probes than it has."""
        return (
            self.layer == run.layer
            and self.done <= run.done
            and self.sketched == run.sketched
            and tuple(self.node_shape) == tuple(run.node_shape)
            and self.feature_dim == run.feature_dim
            and self.nodes.shape[1:] == run.nodes.shape[1:]
            and self.nodes.dtype == run.nodes.dtype
            and tuple(self.units.shape[1:]) == tuple(run.units.shape[1:])
        )


class Checkpoints(Protocol):
    """Where a run keeps the pieces of a layer group it was stopped in (the graph cache provides one
    per model, probe set and options: :meth:`~depara_core.cache.GraphCache.checkpoints`)."""

    def load(self, layer: str) -> LayerPieces | None: ...

    def save(self, pieces: LayerPieces) -> None: ...

    def discard(self, layer: str) -> None: ...
