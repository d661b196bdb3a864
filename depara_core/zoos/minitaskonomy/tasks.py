"""The mini-taskonomy task dictionary: what each task predicts from a procedural scene, and how it is scored.

Every task reads a :class:`~depara_core.scenes.SceneBatch` (converted once to channel-first tensors
by :func:`scene_tensors`), derives its network input (the image, or a noised, greyscale or masked
copy of it) and its target, and defines a training loss (lower is better) and a report metric.

>>> from depara_core.probes.scenes import SceneConfig, render_scenes
>>> scenes = scene_tensors(render_scenes(4, SceneConfig(resolution=32), seed=0))
>>> x, y = TASKS["depth"].example(scenes, torch.arange(4))
>>> tuple(x.shape), tuple(y.shape), TASKS["depth"].kind
((4, 3, 32, 32), (4, 1, 32, 32), 'dense regression')
>>> len(TASKS) >= 12
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from depara_core.probes.scenes import CLASS_NAMES, SceneBatch

__all__ = [
    "Kind",
    "InputKind",
    "Task",
    "TASKS",
    "TASK_NAMES",
    "Scenes",
    "scene_tensors",
    "make_input",
    "NOISE_STD",
    "MASK",
    "DENSE_KINDS",
]

Kind = Literal["dense regression", "dense classification", "image classification", "image regression"]
InputKind = Literal["rgb", "noisy", "grey", "masked"]
DENSE_KINDS = ("dense regression", "dense classification")

Scenes = dict[str, torch.Tensor]
"""Scene arrays as float/int64 tensors: images and dense maps channel-first (N, C, H, W)."""

NOISE_STD = 0.2
"""Standard deviation of the Gaussian noise added to the denoising task's input."""

MASK = (slice(10, 22), slice(10, 22))
"""The centre square (rows, columns at 32 px) hidden from the inpainting task's input."""

_MASK_FILL = 0.5


def scene_tensors(batch: SceneBatch) -> Scenes:
    """Convert a scene batch to tensors once: images/maps (N, C, H, W) float32, labels int64."""

    def img(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        return t.permute(0, 3, 1, 2).contiguous() if t.ndim == 4 else t[:, None]

    return {
        "rgb": img(batch.rgb),
        "depth": img(batch.depth),
        "normals": img(batch.normals),
        "reshading": img(batch.reshading),
        "occlusion_edges": img(batch.occlusion_edges),
        "segmentation": torch.from_numpy(np.ascontiguousarray(batch.segmentation, dtype=np.int64)),
        "curvature": img(batch.curvature),
        "albedo": img(batch.albedo),
        "largest_class": torch.from_numpy(np.asarray(batch.largest_class, dtype=np.int64)),
        "object_count": torch.from_numpy(np.asarray(batch.object_count, dtype=np.int64)),
        "light_direction": torch.from_numpy(np.ascontiguousarray(batch.light_direction, dtype=np.float32)),
        "far": torch.tensor(float(batch.far)),
    }


def make_input(kind: InputKind, rgb: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A task's network input from clean images (N, 3, H, W) in [0, 1].

    ``noisy`` adds Gaussian noise (std :data:`NOISE_STD`, drawn from ``generator``) and clips;
    ``grey`` replaces every channel by the luma; ``masked`` greys out the centre square :data:`MASK`.
    """
    if kind == "rgb":
        return rgb
    if kind == "noisy":
        noise = torch.randn(rgb.shape, generator=generator) * NOISE_STD
        return (rgb + noise).clamp(0, 1)
    if kind == "grey":
        luma = (rgb * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        return luma.expand_as(rgb).contiguous()
    if kind == "masked":
        out = rgb.clone()
        out[:, :, MASK[0], MASK[1]] = _MASK_FILL
        return out
    raise ValueError(f"unknown input kind {kind!r}")


@dataclass(frozen=True)
class Task:
    """One task: its input, target, output shape, loss (lower = better) and metric.

    ``metric_higher_is_better`` gives the metric's direction; ``group`` is an informal family
    (appearance, geometry, semantics) used only in descriptions.
    """

    name: str
    kind: Kind
    channels: int
    loss: Literal["l1", "masked_l1", "bce", "ce", "mse", "cosine"]
    metric: str
    metric_higher_is_better: bool
    input: InputKind
    target_fn: Callable[[Scenes, torch.Tensor], torch.Tensor]
    group: str
    description: str

    @property
    def dense(self) -> bool:
        return self.kind in DENSE_KINDS

    def target(self, scenes: Scenes, idx: torch.Tensor) -> torch.Tensor:
        """The target of scenes ``idx``: dense (N, C, H, W) float or (N, H, W) int64; image (N, C) or (N,) int64."""
        return self.target_fn(scenes, idx)

    def example(self, scenes: Scenes, idx: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, target) of scenes ``idx``."""
        return make_input(self.input, scenes["rgb"][idx], generator), self.target(scenes, idx)

    def compute_loss(self, pred: torch.Tensor, target: torch.Tensor, reduce: bool = True) -> torch.Tensor:
        """The training loss: a scalar, or one value per example when ``reduce`` is False."""
        if self.loss == "l1":
            per = (pred - target).abs().flatten(1).mean(1)
        elif self.loss == "masked_l1":
            per = (pred - target)[:, :, MASK[0], MASK[1]].abs().flatten(1).mean(1)
        elif self.loss == "bce":
            per = F.binary_cross_entropy_with_logits(pred, target, reduction="none").flatten(1).mean(1)
        elif self.loss == "ce":
            per = F.cross_entropy(pred, target, reduction="none")
            per = per.flatten(1).mean(1) if per.ndim > 1 else per
        elif self.loss == "mse":
            per = (pred - target).pow(2).flatten(1).mean(1)
        elif self.loss == "cosine":
            per = 1 - F.cosine_similarity(pred, target, dim=1, eps=1e-6)
        else:  # pragma: no cover - the registry only uses the losses above
            raise ValueError(f"unknown loss {self.loss!r}")
        return per.mean() if reduce else per

    def compute_metric(self, pred: torch.Tensor, target: torch.Tensor) -> float:
        """The report metric over a whole evaluation set (see :attr:`metric`)."""
        return float(_METRICS[self.metric](pred, target))


# ---- targets ---------------------------------------------------------------------------------
def _dense(key: str, fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Callable[[Scenes, torch.Tensor], torch.Tensor]:
    def target(scenes: Scenes, idx: torch.Tensor) -> torch.Tensor:
        t = scenes[key][idx]
        return fn(t) if fn is not None else t

    return target


def _log_depth(scenes: Scenes, idx: torch.Tensor) -> torch.Tensor:
    far = float(scenes["far"])
    return torch.log(scenes["depth"][idx].clamp(min=1e-3)) / np.log(far)


def _curvature(t: torch.Tensor) -> torch.Tensor:
    return torch.tanh(t / 2)


def _largest(scenes: Scenes, idx: torch.Tensor) -> torch.Tensor:
    return scenes["largest_class"][idx] - 1  # 0: no object visible, 1..4: sphere, cylinder, box, cone


def _count(scenes: Scenes, idx: torch.Tensor) -> torch.Tensor:
    return scenes["object_count"][idx].float()[:, None]


def _light(scenes: Scenes, idx: torch.Tensor) -> torch.Tensor:
    return scenes["light_direction"][idx]


# ---- metrics (computed over a whole evaluation set) --------------------------------------------
def _mae(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float((pred - target).abs().mean())


def _masked_mae(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float((pred - target)[:, :, MASK[0], MASK[1]].abs().mean())


def _angular_error(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean angle in degrees between predicted and true unit vectors (per pixel, or per image)."""
    valid = target.norm(dim=1) > 0.5  # normals are zero on the sky: those pixels are not scored
    cos = F.cosine_similarity(pred, target, dim=1, eps=1e-6).clamp(-1, 1)
    return float(torch.rad2deg(torch.acos(cos[valid])).mean())


def _edge_f1(pred: torch.Tensor, target: torch.Tensor) -> float:
    p, t = pred > 0, target > 0.5
    tp = (p & t).sum().item()
    return 2 * tp / max(p.sum().item() + t.sum().item(), 1)


def _miou(pred: torch.Tensor, target: torch.Tensor) -> float:
    labels = pred.argmax(1)
    ious = []
    for c in range(pred.shape[1]):
        inter = ((labels == c) & (target == c)).sum().item()
        union = ((labels == c) | (target == c)).sum().item()
        if union:
            ious.append(inter / union)
    return float(np.mean(ious))


def _accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float((pred.argmax(1) == target).float().mean())


def _count_accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float((pred.round() == target).float().mean())


_METRICS: dict[str, Callable[[torch.Tensor, torch.Tensor], float]] = {
    "MAE": _mae,
    "masked MAE": _masked_mae,
    "angular error (deg)": _angular_error,
    "edge F1": _edge_f1,
    "mIoU": _miou,
    "accuracy": _accuracy,
    "count accuracy": _count_accuracy,
}

_SEG_CLASSES = len(CLASS_NAMES)
_LARGEST_CLASSES = 5

TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("autoencoding", "dense regression", 3, "l1", "MAE", False, "rgb", _dense("rgb"), "appearance",
             "reconstruct the image through the 8x8x8 code"),
        Task("denoising", "dense regression", 3, "l1", "MAE", False, "noisy", _dense("rgb"), "appearance",
             f"remove Gaussian noise (std {NOISE_STD}) from the image"),
        Task("colourisation", "dense regression", 3, "l1", "MAE", False, "grey", _dense("rgb"), "appearance",
             "predict the colour image from its greyscale luma"),
        Task("inpainting", "dense regression", 3, "masked_l1", "masked MAE", False, "masked", _dense("rgb"), "appearance",
             "fill in the greyed-out 12x12 centre square (scored inside the square only)"),
        Task("albedo", "dense regression", 3, "l1", "MAE", False, "rgb", _dense("albedo"), "appearance",
             "unlit base colour of every pixel (intrinsic image decomposition)"),
        Task("depth", "dense regression", 1, "l1", "MAE", False, "rgb", _log_depth, "geometry",
             "log camera depth, scaled so that the far plane is 1"),
        Task("normals", "dense regression", 3, "l1", "angular error (deg)", False, "rgb", _dense("normals"), "geometry",
             "camera-space surface normals (zero on the sky)"),
        Task("reshading", "dense regression", 1, "l1", "MAE", False, "rgb", _dense("reshading"), "geometry",
             "shading under a fixed camera-space light"),
        Task("curvature", "dense regression", 1, "l1", "MAE", False, "rgb", _dense("curvature", _curvature), "geometry",
             "mean surface curvature, squashed as tanh(k / 2)"),
        Task("occlusion_edges", "dense classification", 1, "bce", "edge F1", True, "rgb", _dense("occlusion_edges"), "geometry",
             "pixels on the near side of an object boundary (binary)"),
        Task("segmentation", "dense classification", _SEG_CLASSES, "ce", "mIoU", True, "rgb", _dense("segmentation"), "semantics",
             "per-pixel class: sky, ground, sphere, cylinder, box, cone"),
        Task("largest_class", "image classification", _LARGEST_CLASSES, "ce", "accuracy", True, "rgb", _largest, "semantics",
             "class of the object covering most pixels (or none)"),
        Task("object_count", "image regression", 1, "mse", "count accuracy", True, "rgb", _count, "semantics",
             "number of visible objects"),
        Task("light_direction", "image regression", 3, "cosine", "angular error (deg)", False, "rgb", _light, "geometry",
             "unit camera-space direction towards the light"),
    )
}  # fmt: skip
"""Every task, by name, in a fixed order (the order of the zoo and the ground-truth tables)."""

TASK_NAMES: tuple[str, ...] = tuple(TASKS)
