"""Uncertainty of benchmark figures: bootstrap intervals over targets, paired differences between
methods, and Spearman's ρ with a control partialled out.

Resampling uses numpy's seeded generator so that a results document regenerates identically;
the percentile interval is scipy's (``scipy.stats.bootstrap`` with ``method="percentile"``).

>>> d = paired_difference([0.5, 0.6, 0.7, 0.4], [0.1, 0.2, 0.3, 0.0])
>>> round(d.mean, 3), d.lo > 0, d.text()
(0.4, True, '+0.40 [+0.40, +0.40]')
>>> round(partial_spearman([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [5, 4, 3, 2, 1]), 6)
0.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap

from depara_core.compare.ranks import standardised_ranks

__all__ = ["BOOTSTRAP_REPS", "Interval", "bootstrap_ci", "paired_difference", "partial_spearman"]

BOOTSTRAP_REPS = 4000


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% percentile bootstrap interval over ``n`` paired units (targets)."""

    mean: float
    lo: float
    hi: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        return self.lo > 0 or self.hi < 0

    def text(self, digits: int = 2) -> str:
        return f"{self.mean:+.{digits}f} [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]"


def bootstrap_ci(values: Sequence[float], reps: int = BOOTSTRAP_REPS, seed: int = 0) -> Interval:
    """Mean of ``values`` (NaN dropped) and its 95% percentile bootstrap interval."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    if len(v) == 1 or np.ptp(v) == 0:
        return Interval(float(v.mean()), float(v.mean()), float(v.mean()), len(v))
    res = bootstrap((v,), np.mean, n_resamples=reps, method="percentile", rng=np.random.default_rng(seed))
    ci = res.confidence_interval
    return Interval(float(v.mean()), float(ci.low), float(ci.high), len(v))


def paired_difference(a: Sequence[float], b: Sequence[float], reps: int = BOOTSTRAP_REPS, seed: int = 0) -> Interval:
    """Mean of a − b over paired units (both finite) with its bootstrap interval: the targets are
    resampled together, so what two methods share (an easy target) cancels."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same shape, got {a.shape} and {b.shape}")
    return bootstrap_ci(a - b, reps, seed)


def partial_spearman(pred: Sequence[float], truth: Sequence[float], control: Sequence[float]) -> float:
    """Spearman's ρ of ``pred`` and ``truth`` with ``control`` partialled out: the correlation of
    their ranks after removing from each the part linear in the control's ranks (0 when nothing is left)."""
    rp, rt, rc = (standardised_ranks(np.asarray(v, dtype=float)) for v in (pred, truth, control))

    def residual(r: np.ndarray) -> np.ndarray:
        return r - (np.mean(r * rc) * rc if np.any(rc) else 0.0)

    ep, et = residual(rp), residual(rt)
    den = np.sqrt(np.sum(ep * ep) * np.sum(et * et))
    return float(np.sum(ep * et) / den) if den > 1e-12 else 0.0
