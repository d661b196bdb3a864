"""Controls that any transferability estimator should beat, as score matrices or layer scores.

- **target-agnostic prior**: a source's mean measured transfer to the *other* targets. It knows
  which encoders are good in general and nothing about the target, so beating it shows that an
  estimator finds related tasks, not only strong encoders. It uses measured transfer (labels),
  so it is a control, not a label-free method.
- **depth rules** for layer selection: "pick the shallowest layer" and "pick the deepest layer".

>>> gt = GroundTruth.from_matrix(["a", "b", "c"], [[np.nan, 0.9, 0.7], [0.2, np.nan, 0.1], [0.5, 0.4, np.nan]])
>>> prior = target_agnostic_prior(["a", "b", "c"], gt)
>>> round(float(prior[0, 1]), 9), round(float(prior[2, 1]), 9)  # source a on target b: its mean on target c
(0.7, 0.5)
>>> depth_rule(3, "shallowest").tolist()
[2.0, 1.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from depara_core.evaluation.ground_truth import GroundTruth

__all__ = ["CONTROLS", "DEPTH_RULES", "target_agnostic_prior", "depth_rule"]

CONTROLS = ("prior",)
DEPTH_RULES = ("shallowest", "deepest")


def target_agnostic_prior(names: Sequence[str], gt: GroundTruth) -> np.ndarray:
    """(sources × targets) over ``names``: for target t, each source's mean affinity on every other
    measured target (NaN where a source has no other measurement or is not in ``gt``)."""
    aff = gt.affinity.reindex(index=list(names), columns=list(names)).to_numpy(dtype=float)
    measured = np.isfinite(aff)
    total, count = np.where(measured, aff, 0.0).sum(axis=1), measured.sum(axis=1)
    rest_total = total[:, None] - np.where(measured, aff, 0.0)
    rest_count = count[:, None] - measured
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rest_count > 0, rest_total / np.maximum(rest_count, 1), np.nan)


def depth_rule(n_layers: int, rule: Literal["shallowest", "deepest"]) -> np.ndarray:
    """Layer scores (shallow to deep) of a rule that always prefers the shallowest or the deepest layer."""
    if rule not in DEPTH_RULES:
        raise ValueError(f"unknown depth rule {rule!r}; choose one of {', '.join(DEPTH_RULES)}")
    depth = np.arange(n_layers, dtype=float)
    return depth[::-1].copy() if rule == "shallowest" else depth
