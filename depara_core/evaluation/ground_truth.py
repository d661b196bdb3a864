"""Measured transfer between models: the ground truth rankings are scored against."""

from __future__ import annotations

import hashlib
import io
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
    def from_csv(cls, path: str | Path | bytes, value: str = "affinity", higher_is_better: bool = True, name: str = "") -> GroundTruth:
        """A CSV (a path or its bytes) with columns ``source``, ``target`` and ``value``, one row per
        measured pair. Refused with a message saying what to fix: an unreadable file, missing columns,
        values that are not finite numbers, a pair given twice with different values, a target whose
        values are all equal (nothing to rank)."""
        label = "uploaded" if isinstance(path, bytes) else Path(path).name
        try:
            df = pd.read_csv(io.BytesIO(path) if isinstance(path, bytes) else path)
        except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise DeparaError(f"the ground-truth CSV {label!r} cannot be read ({type(exc).__name__})", "give a CSV with columns source,target," + value) from None
        missing = {"source", "target", value} - set(df.columns)
        if missing:
            raise DeparaError(f"ground-truth CSV {label!r} lacks column(s) {', '.join(sorted(missing))}", "give columns source,target," + value)
        df = df.assign(source=df["source"].astype(str).str.strip(), target=df["target"].astype(str).str.strip())
        values = pd.to_numeric(df[value], errors="coerce")
        bad = df.loc[~np.isfinite(values.to_numpy(dtype=float)), ["source", "target"]]
        if len(bad):
            pairs = ", ".join(f"{a}→{b}" for a, b in bad.head(3).itertuples(index=False))
            raise DeparaError(f"ground-truth CSV {label!r}: {len(bad)} value(s) of {value!r} are not finite numbers ({pairs})", "give a number for every pair, or leave the pair out")
        df = df.assign(**{value: values})
        spread = df.groupby(["source", "target"])[value].agg(["min", "max"])
        conflicting = spread[spread["max"] - spread["min"] > 1e-12 * np.maximum(spread["max"].abs(), 1)]
        if len(conflicting):
            pairs = ", ".join(f"{a}→{b}" for a, b in list(conflicting.index)[:3])
            raise DeparaError(f"ground-truth CSV {label!r} gives different values for the same pair ({pairs})", "keep one row per source and target (average repeated measurements first)")
        mat = df.pivot_table(index="source", columns="target", values=value, aggfunc="first")
        flat = [t for t in mat.columns if mat[t].notna().sum() > 1 and mat[t].nunique() == 1]
        if flat:
            raise DeparaError(f"ground-truth CSV {label!r}: every source has the same value for target(s) {', '.join(map(str, flat[:3]))}", "such a target ranks nothing; leave it out")
        return cls(mat if higher_is_better else -mat, name or (Path(path).stem if not isinstance(path, bytes) else "uploaded"))

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
