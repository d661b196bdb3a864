"""How a model wants its input: size, interpolation, range and normalisation, kept in its spec.

Preprocessing of torchvision and timm models comes from the architecture's own metadata
(:func:`torchvision_preprocess`, :func:`timm_preprocess`), the values those libraries evaluate
their weights with; a user can override it explicitly.

>>> import numpy as np
>>> p = Preprocess(size=(4, 4), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
>>> x = p(np.full((2, 8, 8, 3), 255, np.uint8))
>>> tuple(x.shape), float(x.max())
((2, 3, 4, 4), 1.0)
>>> torchvision_preprocess("efficientnet_b3").describe()["size"], torchvision_preprocess("efficientnet_b3").interpolation
([300, 300], 'bicubic')
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from depara_core.errors import ModelError

if TYPE_CHECKING:
    import torch

__all__ = ["Preprocess", "IMAGENET", "IDENTITY", "resize_and_crop", "crop_geometry", "torchvision_preprocess", "timm_preprocess", "INTERPOLATIONS"]

Interpolation = Literal["bilinear", "bicubic"]
INTERPOLATIONS: tuple[str, ...] = ("bilinear", "bicubic")


@dataclass(frozen=True)
class Preprocess:
    """Turns uint8 RGB images (N, H, W, 3) into the float tensor (N, 3, h, w) a model expects.

    Steps, in order: scale to [0, 1]; if ``size`` is set, resize the shorter side to
    ``resize or min(size)`` (``interpolation``, antialiased) and centre-crop to ``size``
    (torchvision's rounding); if ``clip`` is set, clip values to that sub-range of [0, 1] (the
    taskonomy code's "low_sat" loading clips to [0.1, 0.9]); map [0, 1] linearly onto
    ``value_range``; subtract ``mean`` and divide by ``std`` per channel.
    """

    size: tuple[int, int] | None = None
    resize: int | None = None
    value_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    interpolation: Interpolation = "bilinear"
    clip: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.clip is not None and not (len(self.clip) == 2 and all(map(math.isfinite, self.clip)) and 0.0 <= self.clip[0] < self.clip[1] <= 1.0):
            raise ModelError(f"input clip {self.clip!r} is not a range within [0, 1]", "give two values 0 <= LOW < HIGH <= 1, e.g. 0.1 0.9")
        if self.interpolation not in INTERPOLATIONS:
            raise ModelError(f"interpolation {self.interpolation!r} is not supported", f"use one of {', '.join(INTERPOLATIONS)}")
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 1):
            raise ModelError(f"input size {self.size!r} is not two positive numbers", "give the height and width, e.g. 224 224")
        if self.resize is not None and self.resize < 1:
            raise ModelError(f"resize {self.resize!r} is not positive", "give the shorter side in pixels, e.g. 256")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 or not math.isfinite(s) for s in self.std) or not all(map(math.isfinite, self.mean)):
            raise ModelError(f"mean {self.mean!r} / std {self.std!r} are not three finite numbers each (std > 0)", "give three values per channel")

    def __call__(self, images: np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
        """(N, H, W, 3) uint8 images as the model's input batch; on ``device`` (the bytes travel as
        uint8, a quarter of the floats, and the arithmetic runs there)."""
        import torch  # lazily: specs, keys and displays of preprocessing need no torch

        x = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True)).to(device).permute(0, 3, 1, 2).float() / 255.0
        if self.size is not None:
            x = resize_and_crop(x, self.size, self.resize, self.interpolation)
        if self.clip is not None:
            x = x.clamp(*self.clip)
        lo, hi = self.value_range
        if (lo, hi) != (0.0, 1.0):
            x = x * (hi - lo) + lo
        if self.mean != (0.0, 0.0, 0.0) or self.std != (1.0, 1.0, 1.0):
            mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
            std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
            x = (x - mean) / std
        return x

    def pixel_attribution(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """Gradient*Input in the probes' pixel space: ``grad`` (∂f/∂x at the model's input ``x``,
        as this preprocessing made it) carried back through the value mapping and normalisation,
        times the pixel values in [0, 1] (after resizing and any clip, whose gradient is taken as 1).

        Every model then shares one baseline, black, whatever its normalisation.

        >>> import torch
        >>> p = Preprocess(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
        >>> x = p(np.full((1, 1, 1, 3), 255, np.uint8))  # white: 1.0 after normalising
        >>> p.pixel_attribution(x, torch.ones_like(x)).flatten().tolist()  # pixel 1.0 · (∂x/∂pixel = 2)
        [2.0, 2.0, 2.0]
        """
        import torch

        lo, hi = self.value_range
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        pixels = (x * std + mean - lo) / (hi - lo)
        return pixels * grad * ((hi - lo) / std)

    def replace(self, **overrides) -> Preprocess:
        """A copy with the given fields changed; ``None`` values leave a field as it is.

        >>> IMAGENET.replace(size=(300, 300), resize=None).size
        (300, 300)
        """
        given = {k: (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items() if v is not None}
        unknown = set(given) - set(self.__dataclass_fields__)
        if unknown:
            raise ModelError(f"preprocessing has no field(s) {', '.join(sorted(unknown))}", f"use {', '.join(self.__dataclass_fields__)}")
        return dataclasses.replace(self, **given)

    def describe(self) -> dict:
        """A JSON-able description, used in cache keys and reports."""
        return {
            "size": list(self.size) if self.size else None,
            "resize": self.resize,
            "interpolation": self.interpolation,
            "value_range": list(self.value_range),
            "mean": list(self.mean),
            "std": list(self.std),
            # absent when off, so that keys written before the option existed stay valid
            **({"clip": list(self.clip)} if self.clip is not None else {}),
        }


def resize_and_crop(x: torch.Tensor, size: tuple[int, int], resize: int | None = None, interpolation: Interpolation = "bilinear") -> torch.Tensor:
    """Resize the shorter side of (N, C, H, W) to ``resize`` (default ``min(size)``), centre-crop.

    Output sizes and the crop offset are computed as ``torchvision.transforms.functional`` computes
    them (the longer side truncated, the offset rounded), so that torchvision weights see what they
    were evaluated with.
    """
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    (nh, nw), (top, left) = crop_geometry((h, w), size, resize)
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode=interpolation, align_corners=False, antialias=True)
        if interpolation == "bicubic":
            x = x.clamp(0.0, 1.0)  # bicubic overshoots; images stay in range as PIL's resize keeps them
    th, tw = size
    return x[..., top : top + th, left : left + tw]


def crop_geometry(shape: tuple[int, int], size: tuple[int, int], resize: int | None = None) -> tuple[tuple[int, int], tuple[int, int]]:
    """The resized (height, width) and the crop's (top, left) for an image of ``shape``: the shorter
    side goes to ``resize`` (default ``min(size)``), the longer side truncates and the centre-crop
    offset rounds, as ``torchvision.transforms.functional`` computes them.

    >>> crop_geometry((330, 410), (300, 300), 320)
    ((320, 397), (10, 48))
    """
    h, w = shape
    th, tw = size
    if (h, w) == (th, tw):
        return (h, w), (0, 0)
    short = resize or min(th, tw)
    nh, nw = (short, int(short * w / h)) if h <= w else (int(short * h / w), short)
    nh, nw = max(th, nh), max(tw, nw)
    return (nh, nw), (int(round((nh - th) / 2.0)), int(round((nw - tw) / 2.0)))


IDENTITY = Preprocess()
"""Images in [0, 1] at their own size: what ``module:function`` and TorchScript models get by default."""

IMAGENET = Preprocess(size=(224, 224), resize=256, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
"""torchvision's ImageNet preprocessing (resize 256, crop 224, bilinear)."""


def _pair(v) -> tuple[int, int]:
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return (int(v[0]), int(v[-1]))


def torchvision_preprocess(arch: str) -> Preprocess:
    """The preprocessing of ``arch``'s default torchvision weights (``weights.transforms()``).

    Architectures without published weights get :data:`IMAGENET`.
    """
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(arch).DEFAULT
    except (ValueError, KeyError, AttributeError):
        return IMAGENET
    t = weights.transforms()
    crop, resize = getattr(t, "crop_size", None), getattr(t, "resize_size", None)
    if crop is None:
        return IMAGENET
    interp = str(getattr(t, "interpolation", "bilinear")).rsplit(".", 1)[-1].lower()
    return Preprocess(
        size=_pair(crop),
        resize=int(resize[0]) if resize else None,
        mean=tuple(float(m) for m in t.mean),
        std=tuple(float(s) for s in t.std),
        interpolation=interp if interp in INTERPOLATIONS else "bilinear",
    )


def timm_preprocess(arch: str) -> Preprocess:
    """The preprocessing of ``arch``'s pretrained config in timm (input size, ``crop_pct``, interpolation,
    mean and std), resolved as ``timm.data.create_transform`` does for evaluation, without building
    the model."""
    try:
        import timm
    except ImportError:
        raise ModelError("timm is not installed", "pip install timm") from None
    cfg = timm.models.get_pretrained_cfg(arch)
    if cfg is None:
        return IMAGENET
    data = timm.data.resolve_data_config(pretrained_cfg=cfg.to_dict())
    _, h, w = data["input_size"]
    crop_pct = float(data.get("crop_pct") or 1.0)
    interp = data.get("interpolation", "bilinear")
    return Preprocess(
        size=(int(h), int(w)),
        resize=int(math.floor(min(h, w) / crop_pct)),
        mean=tuple(float(m) for m in data["mean"]),
        std=tuple(float(s) for s in data["std"]),
        interpolation=interp if interp in INTERPOLATIONS else "bicubic",
    )
