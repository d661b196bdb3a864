"""Input checks, array helpers and attribution-overlay pieces shared by the builders in ``plots``.

>>> import numpy as np
>>> small, factor = block_mean(np.arange(36, dtype=float).reshape(6, 6), max_size=3)
>>> small.shape, factor, float(small.mean()) == 17.5
((3, 3), 2, True)
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from numpy.typing import ArrayLike
from PIL import Image as PILImage

from depara_core.errors import DeparaError

__all__ = [
    "PlotInputError",
    "MAX_HEATMAP_SIZE",
    "SIGNED_ATTRIBUTION_COLORSCALE",
    "UNSIGNED_ATTRIBUTION_COLORSCALE",
    "as_finite_array",
    "as_gapped_curve",
    "as_square_matrix",
    "as_labels",
    "as_permutation",
    "block_mean",
    "block_labels",
    "reduce_attribution",
    "attribution_picture",
    "MAX_HOVER_CELLS",
    "attribution_limits",
    "checked_image",
    "attribution_traces",
    "style_image_axes",
]

MAX_HEATMAP_SIZE = 500
"""Heatmaps with more rows than this are block-averaged before they are drawn."""

# Diverging, transparent at zero so the photo shows through where attribution is small.
SIGNED_ATTRIBUTION_COLORSCALE = [
    [0.0, "rgba(5,48,97,1)"],
    [0.25, "rgba(67,147,195,0.85)"],
    [0.5, "rgba(247,247,247,0)"],
    [0.75, "rgba(214,96,77,0.85)"],
    [1.0, "rgba(103,0,31,1)"],
]
UNSIGNED_ATTRIBUTION_COLORSCALE = [
    [0.0, "rgba(0,0,4,0)"],
    [0.25, "rgba(120,28,109,0.6)"],
    [0.5, "rgba(237,105,37,0.85)"],
    [1.0, "rgba(252,255,164,1)"],
]


class PlotInputError(DeparaError):
    """Data handed to a figure builder cannot be drawn as given."""


def _as_float_array(values: ArrayLike, what: str, ndim: int | None) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PlotInputError(f"{what} must be numeric ({exc})", hint="pass numbers only") from exc
    if ndim is not None and array.ndim != ndim:
        raise PlotInputError(
            f"{what} must have {ndim} dimension(s), got shape {array.shape}",
            hint="check which array is passed",
        )
    return array


def as_finite_array(values: ArrayLike, what: str, ndim: int | None = None) -> np.ndarray:
    """Return ``values`` as a float64 array, rejecting NaN/inf and a wrong number of dimensions."""
    array = _as_float_array(values, what, ndim)
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise PlotInputError(
            f"{what} contains {bad} NaN or infinite value(s)",
            hint="recompute it or drop the entries that failed",
        )
    return array


def as_gapped_curve(values: ArrayLike, what: str) -> np.ndarray:
    """Return ``values`` as a 1-D float64 array where NaN marks a point that is unknown (drawn as a
    gap, never as 0); infinities, or no finite value at all, raise ``PlotInputError``.

    >>> as_gapped_curve([0.5, float("nan")], "s").tolist()
    [0.5, nan]
    """
    array = _as_float_array(values, what, 1)
    if np.isinf(array).any():
        raise PlotInputError(f"{what} contains infinite value(s)", hint="recompute it or drop the entries that failed")
    if array.size and not np.isfinite(array).any():
        raise PlotInputError(f"{what} is undefined at every point", hint="choose another method or other layers")
    return array


def as_square_matrix(matrix: ArrayLike, what: str = "matrix") -> np.ndarray:
    """Return ``matrix`` as a finite float64 square array, or raise ``PlotInputError``."""
    array = as_finite_array(matrix, what, ndim=2)
    if array.shape[0] != array.shape[1]:
        raise PlotInputError(
            f"{what} must be square, got shape {array.shape}",
            hint="pass one row and one column per item",
        )
    if array.shape[0] == 0:
        raise PlotInputError(f"{what} is empty", hint="pass at least one item")
    return array


def as_labels(labels: Sequence[object], count: int, what: str = "labels") -> list[str]:
    """Return ``labels`` as unique strings, exactly ``count`` of them."""
    names = [str(label) for label in labels]
    if len(names) != count:
        raise PlotInputError(
            f"got {len(names)} {what} for {count} rows", hint=f"pass exactly one of the {what} per row"
        )
    if len(set(names)) != len(names):
        duplicates = sorted(name for name, times in Counter(names).items() if times > 1)
        raise PlotInputError(
            f"{what} must be unique, repeated: {', '.join(duplicates[:5])}",
            hint="rename the repeated entries",
        )
    return names


def as_permutation(order: ArrayLike | None, count: int) -> np.ndarray:
    """Return ``order`` as an index array that uses each of ``0..count-1`` once (identity if None)."""
    if order is None:
        return np.arange(count)
    indices = np.asarray(order)
    if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        raise PlotInputError("order must be a 1-D list of integer positions", hint="pass e.g. cluster_order(matrix)")
    if indices.size != count or not np.array_equal(np.sort(indices), np.arange(count)):
        raise PlotInputError(
            f"order must use each position 0..{count - 1} exactly once",
            hint="pass a leaf order computed from this same matrix",
        )
    return indices.astype(np.intp)


def _block_starts(size: int, factor: int) -> np.ndarray:
    return np.arange(0, size, factor)


def block_mean(matrix: np.ndarray, max_size: int = MAX_HEATMAP_SIZE) -> tuple[np.ndarray, int]:
    """Average ``factor``×``factor`` blocks so that no side exceeds ``max_size``.

    Returns the reduced matrix and the block side ``factor`` (1 when nothing was reduced).
    The last block of a side is smaller when ``factor`` does not divide it.
    """
    rows, cols = matrix.shape
    factor = max(1, -(-max(rows, cols) // max_size))
    if factor == 1:
        return matrix, 1
    row_starts, col_starts = _block_starts(rows, factor), _block_starts(cols, factor)
    sums = np.add.reduceat(np.add.reduceat(matrix, row_starts, axis=0), col_starts, axis=1)
    row_sizes = np.diff(np.append(row_starts, rows))
    col_sizes = np.diff(np.append(col_starts, cols))
    return sums / np.outer(row_sizes, col_sizes), factor


def block_labels(labels: Sequence[str], factor: int) -> list[str]:
    """Name each block of ``factor`` consecutive labels by its first and last label."""
    if factor == 1:
        return list(labels)
    names = []
    for start in range(0, len(labels), factor):
        block = labels[start : start + factor]
        names.append(block[0] if len(block) == 1 else f"{block[0]} … {block[-1]}")
    return names


def reduce_attribution(attribution: ArrayLike, height: int, width: int) -> np.ndarray:
    """Return an (H, W) map, summing a channel axis given as (C, H, W) or (H, W, C). A 2-D map may
    also be a coarser grid of the image's shape (e.g. 32 × 32 over a 96 × 96 photo): it is drawn
    stretched over the image, so its own pixels need not travel upsampled."""
    array = as_finite_array(attribution, "attribution map")
    if array.ndim == 3:
        if array.shape[1:] == (height, width):
            array = array.sum(axis=0)
        elif array.shape[:2] == (height, width):
            array = array.sum(axis=2)
    coarser = array.ndim == 2 and array.shape[0] <= height and array.shape[1] <= width and array.shape[0] * width == array.shape[1] * height
    if array.shape != (height, width) and not coarser:
        raise PlotInputError(
            f"attribution map of shape {array.shape} does not match the image size {height}×{width}",
            hint="pass the image as the network saw it (after resizing and cropping)",
        )
    return array


def attribution_limits(attribution: np.ndarray, signed: bool, clip_percentile: float) -> tuple[float, float]:
    """Colour limits: ±percentile of |a| when signed, else 0..percentile of |a|."""
    if not 0.0 < clip_percentile <= 100.0:
        raise PlotInputError(
            f"clip_percentile must be in (0, 100], got {clip_percentile}", hint="use e.g. 99.0"
        )
    limit = float(np.percentile(np.abs(attribution), clip_percentile))
    if limit <= 0.0:
        limit = 1.0  # an all-zero map: any positive limit draws it as empty
    return (-limit, limit) if signed else (0.0, limit)


def checked_image(image: ArrayLike) -> np.ndarray:
    """Return ``image`` as a uint8 (H, W, 3) array, or raise ``PlotInputError``."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise PlotInputError(
            f"image must be a uint8 array of shape (H, W, 3), got {array.dtype} {array.shape}",
            hint="convert with np.asarray(pil_image.convert('RGB'))",
        )
    return array


def png_source(image: np.ndarray) -> str:
    """An RGB uint8 image as a PNG data URL, for ``go.Image(source=...)``: a photo travels to the
    browser compressed (a few kB) instead of as ``z``, a JSON list of every pixel's numbers (about
    25x larger; it made the attribution grid a 2 MB chart)."""
    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


MAX_HOVER_CELLS = 64
"""Most cells on a side of the transparent grid that says a picture's values on hover (block means above)."""


def attribution_traces(
    image: ArrayLike,
    attribution: ArrayLike,
    display,
    showscale: bool,
    limits: tuple[float, float] | None = None,
    offset: tuple[float, float] = (0.0, 0.0),
    name: str = "",
    hover: bool = True,
    prepared: np.ndarray | None = None,
) -> list[dict]:
    """The traces (plotly trace dicts, validated once by the figure that takes them) of one probe's
    picture as ``display`` (a :class:`~depara_core.viz.display.MapDisplay`) says: the map over the
    photo, the map alone or the masked photo, each one picture made here (:func:`attribution_picture`),
    its top-left pixel at ``offset`` (x, y) on the figure's one pair of axes; ``limits``: a colour
    range shared with other pictures. With ``hover`` (or ``showscale``), a transparent grid over
    the picture holds the map's values (block means beyond :data:`MAX_HOVER_CELLS` a side), for
    hovering (``name`` says which picture it is) and for the colour bar. ``prepared``: the map as
    ``display`` prepares it, when the caller has it already."""
    photo = checked_image(image)
    height, width = photo.shape[:2]
    ox, oy = offset
    shown = display.prepare(reduce_attribution(attribution, height, width)) if prepared is None else prepared
    zmin, zmax = limits or attribution_limits(shown, display.signed, display.clip_percentile)
    mh, mw = shown.shape
    if display.view == "masked":
        if (mh, mw) != (height, width):
            shown = np.asarray(PILImage.fromarray(shown.astype(np.float32), mode="F").resize((width, height), PILImage.Resampling.BILINEAR), dtype=np.float64)
        return [{"type": "image", "source": png_source(display.masked_photo(photo, shown, max(abs(zmin), abs(zmax)))), "x0": ox, "y0": oy, "hoverinfo": "skip"}]
    # one picture, coloured here: a heatmap for plotly.js to colour cost the browser more than the rest of the page
    picture = attribution_picture(photo, shown, (zmin, zmax), display.signed, display.opacity if display.view == "blended" else 1.0, over_photo=display.view == "blended")
    traces: list[dict] = [{"type": "image", "source": png_source(picture), "x0": ox, "y0": oy, "hoverinfo": "skip"}]
    if not (hover or showscale):
        return traces
    values, factor = block_mean(shown, MAX_HOVER_CELLS)
    dx, dy = factor * width / mw, factor * height / mh  # a cell of ``values`` covers dx × dy photo pixels
    what = "attribution" if factor == 1 else f"mean attribution of {factor} × {factor} map cells"
    traces.append({
        "type": "heatmap",
        "z": values.astype(np.float32),
        "x0": ox + (dx - 1) / 2, "dx": dx, "y0": oy + (dy - 1) / 2, "dy": dy,
        "zmin": zmin,
        "zmax": zmax,
        "colorscale": SIGNED_ATTRIBUTION_COLORSCALE if display.signed else UNSIGNED_ATTRIBUTION_COLORSCALE,
        "opacity": 0.0,
        "showscale": showscale,
        "colorbar": {"title": {"text": "attribution" if display.signed else "|attribution|"}},
        "hovertemplate": (f"{name}<br>" if name else "x %{x}, y %{y}<br>") + what + " %{z:.3g}<extra></extra>" if hover else None,
        "hoverinfo": None if hover else "skip",
    })  # fmt: skip
    return traces


def _rgba_stops(colorscale: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """A plotly colour scale of ``rgba(...)`` stops as positions (K,) and colours (K, 4) in [0, 1]."""
    positions = np.array([float(p) for p, _ in colorscale])
    colours = np.array([[float(v) for v in c[c.index("(") + 1 : -1].split(",")] for _, c in colorscale])
    colours[:, :3] /= 255.0
    return positions, colours


def attribution_picture(photo: np.ndarray, shown: np.ndarray, limits: tuple[float, float], signed: bool, opacity: float, over_photo: bool = True) -> np.ndarray:
    """The picture plotly.js draws for a map over ``photo`` (over white, of the photo's size, when
    not ``over_photo``), made here:
    ``shown`` coloured with the attribution colour scale between ``limits`` (linear between the
    scale's RGBA stops, as plotly.js does), stretched over the photo cell by cell (a coarser map's
    cells are blocks of pixels) and laid over it at ``opacity``. A grid of these travels as small
    PNGs and costs the browser an image each, not a heatmap to colour."""
    # by hand: plotly.colors.sample_colorscale drops the stops' alpha, which these scales need (clear at 0)
    positions, colours = _rgba_stops(SIGNED_ATTRIBUTION_COLORSCALE if signed else UNSIGNED_ATTRIBUTION_COLORSCALE)
    zmin, zmax = limits
    t = np.clip((np.asarray(shown, np.float64) - zmin) / ((zmax - zmin) or 1.0), 0.0, 1.0)
    rgba = np.stack([np.interp(t, positions, colours[:, k]) for k in range(4)], axis=-1)
    if photo.shape[:2] != shown.shape:  # a coarser map: each cell covers a block of pixels
        rows = (np.arange(photo.shape[0]) * shown.shape[0]) // photo.shape[0]
        cols = (np.arange(photo.shape[1]) * shown.shape[1]) // photo.shape[1]
        rgba = rgba[rows][:, cols]
    base = photo.astype(np.float64) if over_photo else np.full(photo.shape, 255.0)
    a = rgba[..., 3:] * opacity
    return np.clip(base * (1.0 - a) + 255.0 * rgba[..., :3] * a, 0, 255).round().astype(np.uint8)


def style_image_axes(fig: go.Figure) -> None:
    """Hide ticks, draw row 0 at the top and keep square pixels (the figure's one pair of axes)."""
    # set on the layout at once: update_xaxes/update_yaxes search every axis and took ~10 ms a figure
    fig.update_layout(xaxis={"showticklabels": False, "showgrid": False, "zeroline": False},
                      yaxis={"showticklabels": False, "showgrid": False, "zeroline": False, "autorange": "reversed", "scaleanchor": "x"})  # fmt: skip
