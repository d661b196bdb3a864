"""What the app and the report show, built from results: figures (plotly) and tables (pandas).

Each function takes results (graphs, terms, scores) and display choices and returns figures and
tables; nothing here computes graphs or talks to a UI toolkit.

>>> import numpy as np
>>> from depara_core.compare.terms import LAMBDA_METHODS, SimilarityTerms
>>> terms = SimilarityTerms(("a", "b", "c"), np.eye(3), np.full((3, 3), 0.5) + np.eye(3) * 0.5)
>>> view = task_view(terms, lam=1.0)
>>> view.tree.ordered_labels == list(view.matrix_fig.data[0].x)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from PIL import Image

from depara_core.compare.layers import LayerScores
from depara_core.compare.pairwise import node_cosines, upper_triangle
from depara_core.compare.ranks import average_ranks
from depara_core.compare.terms import LAMBDA_METHODS, UNBOUNDED, SimilarityTerms
from depara_core.compare.tree import TaskTree, cluster_order, task_tree
from depara_core.engine.graph import Graph
from depara_core.evaluation.layers import layer_agreement
from depara_core.models.controls import UNTRAINED_SUFFIX
from depara_core.models.preprocess import Preprocess, crop_geometry
from depara_core.probes.probeset import ProbeSet
from depara_core.viz import plots
from depara_core.viz.display import MapDisplay
from depara_core.viz.validate import png_source, reduce_attribution

__all__ = [
    "MATRIX_SCALES",
    "TaskView",
    "task_view",
    "ColourRange",
    "colour_range",
    "diagonal_trace",
    "source_notes",
    "ranking_view",
    "network_view",
    "thumbnail",
    "thumbnail_url",
    "attribution_cells",
    "attribution_grid_view",
    "probe_view",
    "node_agreement",
    "edge_view",
    "edge_pair_view",
    "edge_disagreement",
    "layer_view",
    "layer_targets_view",
    "GRID_PIXELS",
]

GRID_PIXELS = 96
"""Side of each cell of the attribution grid (maps are resampled, probes resized)."""
MATRIX_SCALES = ("pairs", "fixed")
"""Colour scales of the similarity matrix (see :func:`colour_range`): the off-diagonal pairs' span, or a fixed range."""


# ---- task transferability ------------------------------------------------------------------
@dataclass(frozen=True)
class TaskView:
    """The similarity matrix (reordered by the tree) and the task tree drawn beside it."""

    matrix: np.ndarray
    tree: TaskTree
    matrix_fig: go.Figure
    tree_fig: go.Figure


def task_view(
    terms: SimilarityTerms, lam: float, method: str = "DEPARA", linkage: str = "average", scale: Literal["pairs", "fixed"] = "pairs"
) -> TaskView:
    """Matrix of ``method`` at ``lam`` with rows and columns in the task tree's leaf order.

    ``scale="pairs"`` spreads the colours over the off-diagonal pairs (the range is stated in the
    title, and the diagonal, each model with itself, is marked, since it saturates); ``"fixed"`` uses
    the method's whole range (:meth:`SimilarityTerms.fixed_range`), so that matrices at different
    settings compare by colour; a method without one (LogME) spans the pairs, and says so.
    """
    m = terms.matrix(method, lam)
    tree = task_tree(m, terms.names, method=linkage)
    colours = colour_range(terms, m, method, lam, scale)
    title = terms.method_label(method, lam) + colours.note
    matrix_fig = plots.similarity_heatmap(m, terms.names, title=f"{title} (rows: source, columns: target){'; ' + colours.shown if colours.shown else ''}", order=list(tree.order))
    if colours.lo is not None:
        matrix_fig.update_traces(zmin=colours.lo, zmax=colours.hi, selector={"type": "heatmap"})
    if colours.scale == "pairs":
        matrix_fig.add_trace(diagonal_trace(terms, tree, method, lam))
    tree_fig = plots.tree_figure(tree.linkage, tree.labels)
    # Same height and vertical margins, and free cell aspect: the tree's leaves line up with the matrix rows.
    n = len(terms.names)
    height = max(420, 22 * n + 170)
    font = {"size": 10} if n > 20 else {}
    margin = {"l": plots.label_margin(terms.names, font.get("size", 12)), "r": 10, "t": 50, "b": 120}
    for fig in (matrix_fig, tree_fig):
        fig.update_layout(height=height, margin=margin)
        fig.update_yaxes(tickfont=font)
    matrix_fig.update_yaxes(scaleanchor=None)
    matrix_fig.update_xaxes(tickfont=font)
    return TaskView(m, tree, matrix_fig, tree_fig)


@dataclass(frozen=True)
class ColourRange:
    """The colour scale of a similarity matrix: its limits (None: plotly's), the scale actually used
    (``"fixed"`` falls back to ``"pairs"`` for a method without a range), and what the title says."""

    lo: float | None
    hi: float | None
    scale: Literal["pairs", "fixed"]
    shown: str
    note: str = ""


def colour_range(terms: SimilarityTerms, m: np.ndarray, method: str, lam: float, scale: Literal["pairs", "fixed"]) -> ColourRange:
    """The colour limits for matrix ``m`` of ``method`` at ``lam``: the method's fixed range, or the off-diagonal span.

    >>> t = SimilarityTerms(("a", "b"), np.eye(2), np.eye(2))
    >>> colour_range(t, np.array([[2.0, 0.5], [0.7, 2.0]]), "DEPARA", 1.0, "pairs").hi
    0.7
    """
    fixed = terms.fixed_range(method, lam) if scale == "fixed" else None
    note = " (no fixed range)" if scale == "fixed" and fixed is None else ""
    if fixed is not None:
        return ColourRange(*fixed, "fixed", f"colours {fixed[0]:g} to {fixed[1]:g}")
    off = m[~np.eye(len(m), dtype=bool)]
    if off.size and np.ptp(off) > 0:
        lo, hi = float(off.min()), float(off.max())
        return ColourRange(lo, hi, "pairs", f"colours span the pairs, {lo:.3g} to {hi:.3g}; diagonal marked ×", note)
    return ColourRange(None, None, "pairs", "", note)


def diagonal_trace(terms: SimilarityTerms, tree: TaskTree, method: str, lam: float) -> go.Scatter:
    """The × marks on a matrix's diagonal (each model with itself), in the tree's order."""
    ordered = tree.ordered_labels
    return go.Scatter(
        x=ordered, y=ordered, mode="markers", marker={"symbol": "x-thin", "size": 10, "line": {"width": 2, "color": "white"}},
        hovertemplate="%{x} with itself" + _diagonal_note(terms, method, lam) + "<extra></extra>", showlegend=False, name="diagonal",
    )  # fmt: skip


def _diagonal_note(terms: SimilarityTerms, method: str, lam: float) -> str:
    """What a model scores with itself: node_scale + λ for the λ methods, 1 for correlations, nothing for the pseudo-label estimators."""
    if method in LAMBDA_METHODS:
        return f": {terms.node_scale + lam:g} ({terms.node_scale:g} + λ)"
    return "" if method in UNBOUNDED else ": 1"


def seed_family(name: str) -> str:
    """The name without a seed suffix (``depth#2`` → ``depth``): models of one family are seed twins.

    >>> seed_family("depth#2"), seed_family("depth"), seed_family("a#b")
    ('depth', 'depth', 'a#b')
    """
    base, sep, suffix = name.rpartition("#")
    return base if sep and suffix.isdigit() else name


def ranking_view(terms: SimilarityTerms, target: str, lam: float, method: str = "DEPARA") -> tuple[go.Figure, pd.DataFrame]:
    """Sources for ``target`` best first: a bar chart (best highlighted; the target's seed twins and
    untrained controls marked, the sanity checks a reader looks for) and its table."""
    ranked = terms.rank_sources(target, lam, method)
    names = [n for n, _ in ranked]
    scores = np.array([s for _, s in ranked])
    j = terms.index(target)
    table = pd.DataFrame({
        "rank": np.arange(1, len(names) + 1),
        "source": names,
        "score": scores,
        "s_V": [terms.s_V[terms.index(n), j] for n in names],
        "s_E": [terms.s_E[terms.index(n), j] for n in names],
    })  # fmt: skip
    notes = source_notes(names, target)
    table["note"] = [notes.get(n, "") for n in names]
    fig = plots.ranking_bar(names, scores, highlight=names[0] if names else None, title=f"best sources for {target}", score_label=terms.method_label(method, lam), marked=notes)
    return fig, table


def source_notes(sources: Sequence[str], target: str) -> dict[str, str]:
    """The sanity checks a reader of a ranking looks for: the target's seed twins and untrained controls.

    >>> source_notes(["depth#2", "normals", "normals@untrained"], "depth")
    {'depth#2': 'seed twin', 'normals@untrained': 'untrained control'}
    """
    notes = {n: "seed twin" for n in sources if seed_family(n) == seed_family(target)}
    notes.update({n: "untrained control" for n in sources if n.endswith(UNTRAINED_SUFFIX)})
    return notes


# ---- images --------------------------------------------------------------------------------
def network_view(image: np.ndarray, preprocess: Preprocess) -> np.ndarray:
    """The probe as the network sees it (resized and cropped as the model's preprocessing does, not
    normalised), uint8 (H, W, 3), drawn with PIL for display: the geometry is the model's own
    (:func:`~depara_core.models.preprocess.crop_geometry`)."""
    if preprocess.size is None:
        return np.asarray(image)
    img = np.asarray(image, np.uint8)
    (nh, nw), (top, left) = crop_geometry(img.shape[:2], preprocess.size, preprocess.resize)
    pil = Image.fromarray(img)
    if (nh, nw) != img.shape[:2]:
        pil = pil.resize((nw, nh), Image.Resampling.BICUBIC if preprocess.interpolation == "bicubic" else Image.Resampling.BILINEAR)
    th, tw = preprocess.size
    out = np.asarray(pil.crop((left, top, left + tw, top + th)))
    out.setflags(write=False)
    return out


def thumbnail(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` resized to ``size`` × ``size`` (bicubic)."""
    return np.asarray(Image.fromarray(np.asarray(image, np.uint8)).resize((size, size), Image.Resampling.BICUBIC))


def thumbnail_url(image: np.ndarray, size: int = 48) -> str:
    """A small PNG data URL of ``image`` (for image columns of tables)."""
    return png_source(thumbnail(image, size))


def _resample_map(attribution: np.ndarray, size: int) -> np.ndarray:
    """A (C, H, W) or (H, W) map summed over channels and resampled to ``size`` × ``size`` for display:
    box filter (area average) when shrinking, bilinear when enlarging (PIL's float images)."""
    a = np.asarray(attribution, np.float32)
    a = a.sum(axis=0) if a.ndim == 3 else a
    resample = Image.Resampling.BOX if a.shape[0] >= size else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(np.ascontiguousarray(a), mode="F").resize((size, size), resample), dtype=np.float32)


# ---- attribution maps ----------------------------------------------------------------------
def attribution_cells(
    graph: Graph, preprocess: Preprocess, probes: ProbeSet, index: int, size: int | None = None, with_image: bool = True
) -> tuple[np.ndarray | None, np.ndarray]:
    """(image, map) of probe ``index`` in ``graph``: the network's view and the channel-summed map,
    both resampled to ``size`` when given — the map only when it is finer (a coarser one is drawn
    stretched over the image) — and the image skipped when ``with_image`` is False."""
    amap = graph.node_map(index)
    amap = amap.sum(axis=0) if amap.ndim == 3 else amap
    shown = amap if size is None else _resample_map(amap, min(size, max(amap.shape)))
    if not with_image:
        return None, shown
    image = network_view(probes.images[index], preprocess)
    if size is not None:
        return thumbnail(image, size), shown
    if image.shape[:2] != amap.shape:
        image = np.asarray(Image.fromarray(image).resize(amap.shape[::-1], Image.Resampling.BICUBIC))
    return image, amap


def attribution_grid_view(
    columns: Sequence[tuple[str, Graph, Preprocess]],
    probes: ProbeSet,
    indices: Sequence[int],
    display: MapDisplay = MapDisplay(),
    size: int = GRID_PIXELS,
) -> go.Figure:
    """Probes (rows) × columns (``(label, graph, preprocess)``: models or layers), overlays at ``size`` px,
    drawn as ``display`` says.

    Each row shows the probe as the first column's network sees it; other columns' maps are
    resampled to the same grid.
    """
    images, maps = [], []
    for i in indices:
        row = []
        for k, (_, g, pre) in enumerate(columns):
            img, amap = attribution_cells(g, pre, probes, i, size, with_image=k == 0)
            if k == 0:
                images.append(img)
            row.append(amap)
        maps.append(row)
    fig = plots.attribution_grid(images, maps, [probes.ids[i] for i in indices], [c[0] for c in columns], display=display)
    fig.update_layout(height=60 + max(110, 700 // max(len(columns), 1)) * len(indices))
    return fig


def probe_view(graph: Graph, preprocess: Preprocess, probes: ProbeSet, index: int, display: MapDisplay, title: str) -> go.Figure:
    """One probe enlarged with one model's attribution map at full resolution (see :func:`probe_views`)."""
    return probe_views([(title, graph, preprocess)], probes, index, display)[0]


def probe_views(columns: Sequence[tuple[str, Graph, Preprocess]], probes: ProbeSet, index: int, display: MapDisplay) -> list[go.Figure]:
    """One probe enlarged for each column ``(label, graph, preprocess)``, large, each colour bar under
    its picture (so the map keeps the figure's width); with ``display.shared_scale`` one colour
    range for all of them."""
    cells = [attribution_cells(g, pre, probes, index) for _, g, pre in columns]
    limits = display.limits(display.prepare(reduce_attribution(a, *img.shape[:2])) for img, a in cells) if display.shared_scale else None
    figs = []
    for (label, _, _), (image, amap) in zip(columns, cells):
        fig = plots.attribution_overlay(image, amap, title=label, display=display, limits=limits)
        fig.update_traces(colorbar={"orientation": "h", "y": -0.08, "thickness": 12, "len": 0.9}, selector={"type": "heatmap"})
        fig.update_layout(height=520, margin={"l": 10, "r": 10, "t": 50, "b": 60})
        figs.append(fig)
    return figs


def node_agreement(a: Graph, b: Graph, probes: ProbeSet, thumbs: bool = True) -> pd.DataFrame:
    """Per-probe cosine of two attribution maps (the terms of s_V), most similar first."""
    cos = node_cosines(a, b)
    order = np.argsort(-cos, kind="stable")
    df = pd.DataFrame({"probe": [probes.ids[i] for i in order], "node cosine": cos[order].astype(float), "index": order})
    if thumbs:
        df.insert(0, "image", [thumbnail_url(probes.images[i]) for i in order])
    return df


# ---- edges ---------------------------------------------------------------------------------
def edge_view(graph: Graph, order: Sequence[int] | None = None, title: str = "") -> go.Figure:
    """A graph's probe × probe edges, probes in cluster order (computed from its edges by default)."""
    edges = graph.edges
    order = cluster_order(edges) if order is None else np.asarray(order)
    return plots.edge_heatmap(edges, list(graph.probe_ids), order=order, title=title or f"{graph.model} / {graph.layer}")


def edge_pair_view(a: Graph, b: Graph) -> tuple[go.Figure, go.Figure, float]:
    """Two graphs' edge heatmaps in one probe order (clustered on the first) and one colour range
    (the off-diagonal edges of both, stated in the titles), and their s_E."""
    from depara_core.compare.pairwise import edge_similarity

    order = cluster_order(a.edges)
    both = np.concatenate([upper_triangle(a.edges), upper_triangle(b.edges)])
    lo, hi = (float(both.min()), float(both.max())) if both.size and np.ptp(both) > 0 else (-1.0, 1.0)
    figs = []
    for g in (a, b):
        fig = edge_view(g, order, title=f"{g.model} / {g.layer} (colours {lo:.3g} to {hi:.3g}, shared)")
        fig.update_traces(zmin=lo, zmax=hi, selector={"type": "heatmap"})
        figs.append(fig)
    return figs[0], figs[1], edge_similarity(a, b)


def edge_disagreement(a: Graph, b: Graph, probes: ProbeSet, top: int = 15, thumbs: bool = True) -> pd.DataFrame:
    """Probe pairs whose edges the two graphs rank most differently (normalised rank difference)."""
    ea, eb = upper_triangle(a.edges), upper_triangle(b.edges)
    ra, rb = average_ranks(ea).cpu().numpy() / ea.size, average_ranks(eb).cpu().numpy() / eb.size
    diff = ra - rb
    i, j = np.triu_indices(a.edges.shape[0], k=1)
    pick = np.argsort(-np.abs(diff), kind="stable")[:top]
    df = pd.DataFrame({
        "probe A": [probes.ids[i[p]] for p in pick],
        "probe B": [probes.ids[j[p]] for p in pick],
        f"edge in {a.model}": ea[pick].astype(float),
        f"edge in {b.model}": eb[pick].astype(float),
        "rank difference": diff[pick].astype(float),
    })  # fmt: skip
    if thumbs:
        df.insert(0, "A", [thumbnail_url(probes.images[i[p]]) for p in pick])
        df.insert(1, "B", [thumbnail_url(probes.images[j[p]]) for p in pick])
    return df


# ---- layers --------------------------------------------------------------------------------
def layer_targets_view(
    scores: Sequence[LayerScores], lam: float, labels: Sequence[str] | None = None, measured: dict[str, np.ndarray | None] | None = None,
    measured_name: str = "measured transfer", method: str = "DEPARA",
) -> tuple[go.Figure, pd.DataFrame]:
    """One source's layers against several targets (each :class:`LayerScores` of the same source and
    layers): s(λ) (or ``method``'s score) per target with its recommended layer, measured transfer
    where known, and one table of every target's recommendation (with the Spearman ρ of the score
    against measured transfer)."""
    if not scores:
        raise plots.PlotInputError("no layer scores were given", hint="score at least one target")
    first = scores[0]
    if any(s.source != first.source or tuple(s.layers) != tuple(first.layers) for s in scores):
        raise plots.PlotInputError("the layer scores are of different sources or layers", hint="compare targets of one source")
    names = list(labels) if labels else list(first.layers)
    measured = measured or {}
    label = plots.score_label(method, lam)
    fig = plots.layer_targets(names, {s.target: s.scores(lam, method) for s in scores}, measured, measured_name, lam,
                              title=f"layers of {first.source} vs {len(scores)} targets" + ("" if method == "DEPARA" else f" ({method})"), score_name=label)  # fmt: skip
    rows = []
    for s in scores:
        combined = s.scores(lam, method)
        best = s.layers.index(s.best(lam, method))
        m = measured.get(s.target)
        rho = layer_agreement(s, lam, m, method) if m is not None else float("nan")
        rows.append({"target": s.target, "recommended layer": names[best], label: float(combined[best]),
                     "best measured layer": names[int(np.nanargmax(m))] if m is not None and np.isfinite(m).any() else "", "Spearman ρ vs measured": rho})  # fmt: skip
    return fig, pd.DataFrame(rows)


def layer_view(
    scores: LayerScores, lam: float, labels: Sequence[str] | None = None, measured: np.ndarray | None = None, measured_name: str = "measured transfer",
    method: str = "DEPARA",
) -> tuple[go.Figure, pd.DataFrame]:
    """Per-layer s_V, s_E and s(λ) (or ``method``'s score) with the recommended layer marked, and the table behind it."""
    s = scores.scores(lam, method)
    label = plots.score_label(method, lam)
    names = list(labels) if labels else list(scores.layers)
    best = scores.layers.index(scores.best(lam, method))
    shown = measured if measured is not None and np.isfinite(measured).any() else None
    fig = plots.layer_scores(
        names, scores.s_V, scores.s_E, s, best=best, measured=shown,
        measured_name=measured_name, lambda_value=lam, title=f"layers of {scores.source} vs {scores.target}", score_name=None if method == "DEPARA" else method,
    )  # fmt: skip
    table = pd.DataFrame({"layer": list(scores.layers), "label": names, "s_V": scores.s_V, "s_E": scores.s_E, **({} if method in ("DEPARA-V", "DEPARA-E") else {label: s})})
    table["recommended"] = table.index == best
    if measured is not None:
        table[measured_name] = measured
    return fig, table
