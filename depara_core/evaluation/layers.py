"""Measured per-layer transfer and its agreement with layer scores."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from depara_core.compare.layers import LayerScores
from depara_core.compare.ranks import spearman
from depara_core.errors import DeparaError

__all__ = ['LayerTruth', 'layer_agreement']


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
        bad = df.loc[~np.isfinite(vals.to_numpy(dtype=float)), ["source", "target", "layer"]]
        if len(bad):
            rows = ", ".join(f"{a}→{b} at {c}" for a, b, c in bad.head(3).itertuples(index=False))
            raise DeparaError(f"{len(bad)} value(s) of {col!r} in the layer ground truth are not finite numbers ({rows})", "give a number for every row, or leave the row out")
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


def layer_agreement(scores: LayerScores, lam: float, measured: np.ndarray, method: str = "DEPARA") -> float:
    """Spearman between ``method``'s per-layer scores (s(λ) for DEPARA) and the measured transfer
    (layers measured and scored only; NaN if < 3)."""
    s = scores.scores(lam, method)
    ok = np.isfinite(measured) & np.isfinite(s)
    if ok.sum() < 3 or np.ptp(measured[ok]) == 0 or np.ptp(s[ok]) == 0:
        return float("nan")
    return spearman(s[ok], measured[ok])
