"""How attribution maps are drawn: view, opacity, sign, smoothing, clipping, shared colour range.

These are display choices only; the graph's nodes (and every similarity) never change.

>>> import numpy as np
>>> d = MapDisplay(signed=False, smoothing=1.0)
>>> m = d.prepare(np.array([[0.0, 0.0, 0.0], [0.0, -9.0, 0.0], [0.0, 0.0, 0.0]]))
>>> bool(m.min() >= 0), bool(0 < m.max() < 9.0), int(m.argmax())  # absolute, spread out, still centred
(True, True, 4)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.ndimage import gaussian_filter

from depara_core.viz.validate import PlotInputError, attribution_limits

__all__ = ["MapDisplay", "VIEWS", "OFFERED"]

VIEWS = ("blended", "map", "masked")
"""``blended``: the map over the photo at ``opacity``; ``map``: the map alone; ``masked``: the photo
shown only where |attribution| is high (brightness = |a| / the clip limit)."""

OFFERED = {"opacity": (0.0, 1.0, 0.05), "clip_percentile": (90.0, 100.0, 0.5), "smoothing": (0.0, 4.0, 0.5)}
"""(lowest, highest, step) of the numeric choices an app offers (its sliders, and what links may set)."""


@dataclass(frozen=True)
class MapDisplay:
    """One way of drawing attribution maps (see :data:`VIEWS`)."""

    view: Literal["blended", "map", "masked"] = "blended"
    opacity: float = 0.6
    signed: bool = True
    clip_percentile: float = 99.0
    smoothing: float = 0.0
    """Standard deviation, in displayed pixels, of a Gaussian blur of the map (0: none)."""
    shared_scale: bool = False
    """One colour range for every map of a figure (else each map is scaled on its own)."""

    def __post_init__(self) -> None:
        if self.view not in VIEWS:
            raise PlotInputError(f"view {self.view!r} is not one of {', '.join(VIEWS)}")
        if not 0.0 <= self.opacity <= 1.0:
            raise PlotInputError(f"opacity must be in [0, 1], got {self.opacity}")
        if not 0.0 <= self.smoothing <= 50.0:
            raise PlotInputError(f"smoothing must be in [0, 50] pixels, got {self.smoothing}")
        attribution_limits(np.ones(1), True, self.clip_percentile)  # checks the percentile

    def describe(self) -> str:
        """The choices in words, for an exported figure's caption.

        >>> MapDisplay(view="map", signed=False).describe()
        'map only, absolute values, clipped at the 99th percentile of |a|, each map scaled on its own'
        """
        view = {"blended": f"map over the photo at opacity {self.opacity:g}", "map": "map only", "masked": "photo masked by |map|"}[self.view]
        parts = [view, "signed values" if self.signed else "absolute values", "not clipped" if self.clip_percentile >= 100 else f"clipped at the {self.clip_percentile:g}th percentile of |a|"]
        if self.smoothing > 0:
            parts.append(f"smoothed by {self.smoothing:g} px")
        parts.append("one colour scale for all maps" if self.shared_scale else "each map scaled on its own")
        return ", ".join(parts)

    def prepare(self, amap: np.ndarray) -> np.ndarray:
        """The (H, W) map as displayed: absolute value if unsigned, then smoothed."""
        m = np.asarray(amap, dtype=np.float64)
        if not self.signed:
            m = np.abs(m)
        return gaussian_filter(m, self.smoothing, mode="nearest") if self.smoothing > 0 else m

    def limits(self, maps: Iterable[np.ndarray]) -> tuple[float, float]:
        """The colour range of prepared ``maps`` taken together (the clip percentile of all their |a|)."""
        values = np.concatenate([np.abs(np.asarray(m, dtype=np.float64)).ravel() for m in maps])
        return attribution_limits(values, self.signed, self.clip_percentile)

    def masked_photo(self, photo: np.ndarray, prepared: np.ndarray, limit: float) -> np.ndarray:
        """The photo scaled, pixel by pixel, by min(|a| / limit, 1)."""
        mask = np.clip(np.abs(prepared) / limit, 0.0, 1.0)
        return (photo.astype(np.float64) * mask[..., None]).round().astype(np.uint8)
