"""Measured transfer between models: the ground truth rankings are scored against."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from depara_core.errors import DeparaError

__all__ = ['GroundTruth']


@dataclass(frozen=True)
class GroundTruth:
    """Measured transfer: ``affinity.loc[source, target]``, higher = better (NaN = not measured)."""

    affinity: pd.DataFrame = field(repr=False)
    name: str = ""

    @property
    def digest(self) -> str:
        """SHA-256 of the sources, targets and every value (a content key, never a name or a sum)."""
        h = hashlib.sha256()
        h.update(json.dumps([list(map(str, self.affinity.index)), list(map(str, self.affinity.columns))]).encode())
        h.update(np.ascontiguousarray(self.affinity.to_numpy(dtype=np.float64)).tobytes())
        return h.hexdigest()

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
