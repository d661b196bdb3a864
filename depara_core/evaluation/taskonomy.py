"""Taskonomy's measured affinities and DEPARA's ``sort_gt`` over the paper's 20 tasks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from depara_core.errors import DeparaError
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.resources import asset_dir

__all__ = ['TASKONOMY_TASKS', 'TASKONOMY_TARGETS', 'TASKONOMY_ALIASES', 'taskonomy_ground_truth', 'taskonomy_sort_gt']




TASKONOMY_TASKS = (
    "autoencoder", "curvature", "denoise", "edge2d", "edge3d", "keypoint2d", "keypoint3d", "colorization",
    "reshade", "rgb2depth", "rgb2mist", "rgb2sfnorm", "room_layout", "segment25d", "segment2d",
    "vanishing_point", "segmentsemantic", "class_1000", "class_places", "inpainting_whole",
)  # fmt: skip
"""The 20 tasks of the DEPARA paper, in the index order of its ``sort_gt.npy``."""


TASKONOMY_TARGETS = tuple(t for t in TASKONOMY_TASKS if t not in ("colorization", "inpainting_whole"))
"""The 18 targets with measured first-order transfers."""


TASKONOMY_ALIASES = {
    "segmentsemantic_rb": "segmentsemantic",
    "vanishing_point_well_defined": "vanishing_point",
    "impainting_whole": "inpainting_whole",
}
"""Taskonomy's key names that differ from the paper's task names."""


# ---- taskonomy -----------------------------------------------------------------------------
def taskonomy_ground_truth(budget: str = "16k") -> GroundTruth:
    """Taskonomy's measured first-order affinities (assets/taskonomy) over the paper's 20 tasks."""
    suffix = {"16k": "_16k", "1k": "_1k", "all": ""}
    if budget not in suffix:
        raise DeparaError(f"unknown taskonomy budget {budget!r}", "use '16k', '1k' or 'all'")
    df = pd.read_csv(asset_dir("taskonomy") / f"all_affinities{suffix[budget]}.csv")
    df = df[df["order"] == 1].copy()
    df["source"] = df["sources"].map(lambda s: TASKONOMY_ALIASES.get(s, s))
    df["target"] = df["target"].map(lambda s: TASKONOMY_ALIASES.get(s, s))
    df = df[df["source"].isin(TASKONOMY_TASKS) & df["target"].isin(TASKONOMY_TASKS)]
    mat = df.pivot_table(index="source", columns="target", values="affinity", aggfunc="first")
    mat = mat.reindex(index=list(TASKONOMY_TASKS), columns=list(TASKONOMY_TASKS))
    return GroundTruth(mat, f"taskonomy-{budget}")


def taskonomy_sort_gt(budget: str = "16k") -> np.ndarray:
    """DEPARA's ``sort_gt`` array (18, 20): per target, itself then the 19 others best to worst."""
    gt = taskonomy_ground_truth(budget)
    index = {t: i for i, t in enumerate(TASKONOMY_TASKS)}
    return np.array([[index[t]] + [index[s] for s in gt.ranking(t)] for t in TASKONOMY_TARGETS], dtype=np.int64)
