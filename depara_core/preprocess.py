"""How a model wants its input: size, range and normalisation, kept in the model's spec.

>>> import numpy as np
>>> p = Preprocess(size=(4, 4), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
>>> x = p(np.full((2, 8, 8, 3), 255, np.uint8))
>>> tuple(x.shape), float(x.max())
((2, 3, 4, 4), 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["Preprocess", "IMAGENET", "IDENTITY"]


@dataclass(frozen=True)
class Preprocess:
    """Turns uint8 RGB images (N, H, W, 3) into the float tensor (N, 3, h, w) a model expects.

    Steps, in order: scale to [0, 1]; if ``size`` is set, resize the shorter side to
    ``resize or min(size)`` (bilinear, antialiased) and centre-crop to ``size``; map [0, 1]
    linearly onto ``value_range``; subtract ``mean`` and divide by ``std`` per channel.
    """

    size: tuple[int, int] | None = None
    resize: int | None = None
    value_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __call__(self, images: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True)).permute(0, 3, 1, 2).float() / 255.0
        if self.size is not None:
            x = resize_and_crop(x, self.size, self.resize)
        lo, hi = self.value_range
        if (lo, hi) != (0.0, 1.0):
            x = x * (hi - lo) + lo
        if self.mean != (0.0, 0.0, 0.0) or self.std != (1.0, 1.0, 1.0):
            mean = torch.tensor(self.mean).view(1, 3, 1, 1)
            std = torch.tensor(self.std).view(1, 3, 1, 1)
            x = (x - mean) / std
        return x

    def describe(self) -> dict:
        """A JSON-able description, used in cache keys and reports."""
        return {
            "size": list(self.size) if self.size else None,
            "resize": self.resize,
            "value_range": list(self.value_range),
            "mean": list(self.mean),
            "std": list(self.std),
        }


def resize_and_crop(x: torch.Tensor, size: tuple[int, int], resize: int | None = None) -> torch.Tensor:
    """Resize the shorter side of (N, C, H, W) to ``resize`` (default ``min(size)``), centre-crop."""
    h, w = x.shape[-2:]
    th, tw = size
    short = resize or min(th, tw)
    if (h, w) != (th, tw):
        scale = short / min(h, w)
        nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
        if (nh, nw) != (h, w):
            x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        top, left = (nh - th) // 2, (nw - tw) // 2
        x = x[..., top : top + th, left : left + tw]
    return x


IDENTITY = Preprocess()
"""Images in [0, 1] at their own size: what ``similarity --model NAME=module:function`` models get."""

IMAGENET = Preprocess(size=(224, 224), resize=256, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
"""torchvision's ImageNet preprocessing."""
