"""Figure builders: plain arrays and tables in, ``plotly.graph_objects.Figure`` out.

>>> fig = ranking_bar(["resnet18", "vgg16"], [0.4, 0.7], highlight="vgg16")
>>> fig.data[0].y
('vgg16', 'resnet18')

Every builder checks its input and raises ``PlotInputError`` (a ``ValueError``) with a
message that says what is wrong. Heatmap values travel as float32 arrays, and matrices
larger than ``MAX_HEATMAP_SIZE`` per side are block-averaged before they are drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePath

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from numpy.typing import ArrayLike
from plotly.colors import qualitative
from plotly.subplots import make_subplots
from scipy.cluster import hierarchy

from depara_core.viz.display import MapDisplay
from depara_core.viz.validate import (
    MAX_HEATMAP_SIZE,
    SIGNED_ATTRIBUTION_COLORSCALE,
    UNSIGNED_ATTRIBUTION_COLORSCALE,
    PlotInputError,
    as_finite_array,
    as_gapped_curve,
    as_labels,
    as_permutation,
    as_square_matrix,
    attribution_limits,
    attribution_traces,
    block_labels,
    block_mean,
    checked_image,
    reduce_attribution,
    style_image_axes,
)

__all__ = [
    "PlotInputError",
    "MAX_HEATMAP_SIZE",
    "HIGHLIGHT_COLOR",
    "similarity_heatmap",
    "edge_heatmap",
    "tree_figure",
    "tree_trace",
    "ranking_trace",
    "label_margin",
    "ranking_bar",
    "pr_curve",
    "precision_recall_at_k",
    "score_label",
    "layer_scores",
    "layer_targets",
    "attribution_overlay",
    "attribution_grid",
    "cosine_histogram",
    "figure_config",
]

HIGHLIGHT_COLOR = "#d62728"
PLAIN_COLOR = "#7f9fbf"
MARKED_COLOR = "#e8a33d"
# Baselines drawn in a fixed, quiet style so the compared methods stand out.
_REFERENCE_LINE_STYLES = {
    "random": {"color": "grey", "dash": "dash"},
    "oracle": {"color": "black", "dash": "dot"},
}


def label_margin(labels: Sequence[str], font_size: float = 12) -> int:
    """Pixels a margin needs for the longest of ``labels`` as tick text, with a little room.

    Written into the figure rather than left to plotly.js's automatic margins, which a saved report
    and a static picture do not always apply (a report's task tree lost up to 77 px of its leaves).

    >>> label_margin(["a", "occlusion_edges#2"], font_size=10)
    118
    """
    longest = max((len(str(label)) for label in labels), default=0)
    return int(np.ceil(0.62 * font_size * longest)) + 12


# --------------------------------------------------------------------------- heatmaps


def _square_heatmap(
    square: np.ndarray,
    names: list[str],
    order: ArrayLike | None,
    title: str,
    hovertemplate: str,
    **heatmap_style: object,
) -> go.Figure:
    permutation = as_permutation(order, square.shape[0])
    reordered = square[np.ix_(permutation, permutation)]
    ordered_names = [names[i] for i in permutation]
    values, factor = block_mean(reordered, MAX_HEATMAP_SIZE)
    shown_names = block_labels(ordered_names, factor)
    if factor > 1:
        note = (
            f"downsampled from {square.shape[0]}×{square.shape[0]} to {values.shape[0]}×{values.shape[0]}"
            f" (mean of {factor}×{factor} blocks)"
        )
        title = f"{title} — {note}" if title else note
    heatmap = go.Heatmap(
        z=values.astype(np.float32),
        x=shown_names,
        y=shown_names,
        hovertemplate=hovertemplate,
        **heatmap_style,
    )
    fig = go.Figure(heatmap)
    fig.update_layout(title=title or None, margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10})
    fig.update_xaxes(type="category", tickangle=-45, showgrid=False)
    fig.update_yaxes(type="category", autorange="reversed", scaleanchor="x", showgrid=False)
    return fig


def similarity_heatmap(
    matrix: ArrayLike,
    labels: Sequence[str],
    title: str = "",
    order: ArrayLike | None = None,
    zmid: float | None = None,
    colorscale: str | list = "Viridis",
) -> go.Figure:
    """Square model×model similarity matrix, rows and columns reordered by ``order`` (e.g. a
    dendrogram leaf order). Hover shows row, column and value; the first row is at the top.

    >>> fig = similarity_heatmap([[1.0, 0.2], [0.2, 1.0]], ["resnet18", "vgg16"], order=[1, 0])
    >>> fig.data[0].x, fig.data[0].z.dtype.name
    (('vgg16', 'resnet18'), 'float32')
    """
    square = as_square_matrix(matrix, "similarity matrix")
    names = as_labels(labels, square.shape[0], "labels")
    return _square_heatmap(
        square,
        names,
        order,
        title,
        "row: %{y}<br>column: %{x}<br>value: %{z:.4f}<extra></extra>",
        zmid=zmid,
        colorscale=colorscale,
        colorbar={"title": {"text": "similarity"}},
    )


def edge_heatmap(
    edges: ArrayLike,
    probe_ids: Sequence[str],
    order: ArrayLike | None = None,
    title: str = "",
) -> go.Figure:
    """Probe×probe edge similarities of one attribution graph; pass ``order=cluster_order(edges)``
    to group probes the network treats alike.

    >>> fig = edge_heatmap([[1.0, 0.5, 0.1], [0.5, 1.0, 0.2], [0.1, 0.2, 1.0]], ["a", "b", "c"])
    >>> fig.data[0].y
    ('a', 'b', 'c')
    """
    square = as_square_matrix(edges, "edge matrix")
    names = as_labels(probe_ids, square.shape[0], "probe ids")
    return _square_heatmap(
        square,
        names,
        order,
        title,
        "probe: %{y}<br>probe: %{x}<br>edge similarity: %{z:.4f}<extra></extra>",
        colorscale="Viridis",
        colorbar={"title": {"text": "edge"}},
    )


def tree_figure(linkage: ArrayLike, labels: Sequence[str], title: str = "task tree") -> go.Figure:
    """A scipy linkage drawn sideways as one line trace: leaves top to bottom in the tree's leaf order
    at rows 0, 1, … (so that they line up with a heatmap in that order), merge distance to the right.
    Hovering a corner shows its merge distance.

    >>> fig = tree_figure([[0, 1, 0.2, 2], [2, 3, 0.9, 3]], ["a", "b", "c"])
    >>> list(fig.layout.yaxis.ticktext)
    ['c', 'a', 'b']
    """
    lines, leaves = tree_trace(linkage, labels)
    n = len(leaves)
    fig = go.Figure(lines)
    fig.update_yaxes(tickvals=list(range(n)), ticktext=leaves, autorange="reversed", showgrid=False, zeroline=False, range=[n - 0.5, -0.5])
    fig.update_xaxes(title={"text": "distance"}, zeroline=False, rangemode="tozero")
    fig.update_layout(title=title or None, height=max(250, 28 * n + 90), margin={"l": label_margin(leaves), "r": 10, "t": 50 if title else 20, "b": 10})
    return fig


def tree_trace(linkage: ArrayLike, labels: Sequence[str]) -> tuple[go.Scatter, list[str]]:
    """The lines of :func:`tree_figure` (leaf i at y = i) and the labels in leaf order.

    >>> lines, leaves = tree_trace([[0, 1, 0.2, 2], [2, 3, 0.9, 3]], ["a", "b", "c"])
    >>> leaves, lines.y[:4]
    (['c', 'a', 'b'], (1.0, 1.0, 2.0, 2.0))
    """
    tree = as_finite_array(linkage, "linkage matrix", ndim=2)
    if tree.shape[0] < 1 or tree.shape[1] != 4 or not hierarchy.is_valid_linkage(tree):
        raise PlotInputError(f"not a valid scipy linkage matrix (shape {tree.shape})", hint="pass the output of scipy.cluster.hierarchy.linkage")
    names = as_labels(labels, tree.shape[0] + 1, "labels")
    d = hierarchy.dendrogram(tree, no_plot=True)
    xs: list[float | None] = []
    ys: list[float | None] = []
    texts: list[str] = []
    for icoord, dcoord in zip(d["icoord"], d["dcoord"]):
        xs += [*dcoord, None]
        ys += [*((np.asarray(icoord) - 5.0) / 10.0), None]  # scipy puts leaf i at 5 + 10 i
        texts += [f"merge distance: {max(dcoord):.4f}"] * 4 + [""]
    lines = go.Scatter(x=xs, y=ys, mode="lines", line={"color": PLAIN_COLOR, "width": 2}, text=texts, hoverinfo="text", showlegend=False)
    return lines, [names[i] for i in hierarchy.leaves_list(tree)]


# --------------------------------------------------------------------------- rankings


def ranking_bar(
    names: Sequence[str],
    scores: ArrayLike,
    highlight: str | None = None,
    title: str = "",
    higher_is_better: bool = True,
    score_label: str = "score",
    marked: Mapping[str, str] | None = None,
) -> go.Figure:
    """Horizontal bars sorted best first (best at the top); ``highlight`` names the bar drawn in
    a contrasting colour; ``marked`` (name → note, e.g. "seed twin") bars are drawn in a third
    colour with the note in their label.

    >>> fig = ranking_bar(["a", "b", "c"], [0.1, 0.9, 0.5], highlight="c")
    >>> fig.data[0].y, fig.data[0].marker.color[1] == HIGHLIGHT_COLOR
    (('b', 'c', 'a'), True)
    """
    bars = ranking_trace(names, scores, highlight, higher_is_better, score_label, marked)
    fig = go.Figure(bars)
    fig.update_yaxes(type="category", autorange="reversed")
    fig.update_xaxes(title={"text": score_label})
    fig.update_layout(
        title=title or None,
        height=max(220, 30 * len(bars.y) + 80),
        margin={"l": label_margin(bars.y), "r": 10, "t": 50 if title else 20, "b": 10},
    )
    return fig


def ranking_trace(
    names: Sequence[str],
    scores: ArrayLike,
    highlight: str | None = None,
    higher_is_better: bool = True,
    score_label: str = "score",
    marked: Mapping[str, str] | None = None,
) -> go.Bar:
    """The bars of :func:`ranking_bar`, best first.

    >>> ranking_trace(["a", "b"], [0.1, 0.9]).y
    ('b', 'a')
    """
    values = as_finite_array(scores, "scores", ndim=1)
    labels = as_labels(names, values.size, "names")
    if highlight is not None and str(highlight) not in labels:
        raise PlotInputError(f"highlight {highlight!r} is not one of the names", hint="pick one of the names")
    ranked = np.argsort(-values if higher_is_better else values, kind="stable")
    ranked_names = [labels[i] for i in ranked]
    marked = {str(k): str(v) for k, v in (marked or {}).items()}
    colors = [HIGHLIGHT_COLOR if name == highlight else MARKED_COLOR if name in marked else PLAIN_COLOR for name in ranked_names]
    return go.Bar(
        x=values[ranked],
        y=[f"{name} ({marked[name]})" if name in marked else name for name in ranked_names],
        orientation="h",
        marker={"color": colors},
        text=[f"{v:.3f}" for v in values[ranked]],
        textposition="auto",
        hovertemplate="%{y}<br>" + score_label + ": %{x:.4f}<extra></extra>",
    )


def _unit_interval(values: ArrayLike, what: str) -> np.ndarray:
    array = as_finite_array(values, what, ndim=1)
    if array.size and (array.min() < -1e-9 or array.max() > 1 + 1e-9):
        raise PlotInputError(f"{what} must lie in [0, 1]", hint="pass fractions, not percentages")
    return array


def pr_curve(curves: Mapping[str, tuple[ArrayLike, ArrayLike]], title: str = "") -> go.Figure:
    """One line with markers per method; recall on x, precision on y, both shown on [0, 1.05].

    >>> fig = pr_curve({"DEPARA": ([0.5, 1.0], [1.0, 0.8]), "random": ([0.5, 1.0], [0.4, 0.4])})
    >>> [trace.name for trace in fig.data]
    ['DEPARA', 'random']
    """
    if not curves:
        raise PlotInputError("no precision-recall curves were given", hint="pass at least one method")
    fig = go.Figure()
    for method, (recall, precision) in curves.items():
        recall_values = _unit_interval(recall, f"recall of {method}")
        precision_values = _unit_interval(precision, f"precision of {method}")
        if recall_values.size != precision_values.size:
            raise PlotInputError(
                f"{method}: {recall_values.size} recall values but {precision_values.size} precision values",
                hint="pass one precision per recall",
            )
        style = _REFERENCE_LINE_STYLES.get(str(method).lower(), {})
        fig.add_trace(
            go.Scatter(
                x=recall_values,
                y=precision_values,
                name=str(method),
                mode="lines+markers",
                line=style or None,
                hovertemplate=f"{method}<br>recall %{{x:.3f}}<br>precision %{{y:.3f}}<extra></extra>",
            )
        )
    fig.update_xaxes(title={"text": "recall"}, range=[0, 1.05])
    fig.update_yaxes(title={"text": "precision"}, range=[0, 1.05])
    fig.update_layout(title=title or None, hovermode="closest")
    return fig


def precision_recall_at_k(table: pd.DataFrame, title: str = "") -> go.Figure:
    """P@K (left panel) and R@K (right panel) against K, one colour per method.

    >>> table = pd.DataFrame({"method": ["DEPARA"] * 2, "k": [1, 2], "precision": [1.0, 0.5],
    ...                       "recall": [0.5, 0.5]})
    >>> [trace.name for trace in precision_recall_at_k(table).data]
    ['DEPARA', 'DEPARA']
    """
    needed = ["method", "k", "precision", "recall"]
    missing = [column for column in needed if column not in table.columns]
    if missing:
        raise PlotInputError(f"table lacks column(s) {', '.join(missing)}", hint=f"pass columns {needed}")
    if table.empty:
        raise PlotInputError("table has no rows", hint="evaluate at least one K")
    for column in ("k", "precision", "recall"):
        as_finite_array(table[column], f"column {column!r}")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Precision@K", "Recall@K"), shared_xaxes=True)
    palette = qualitative.Plotly
    for index, (method, rows) in enumerate(table.groupby("method", sort=False)):
        rows = rows.sort_values("k")
        style = _REFERENCE_LINE_STYLES.get(str(method).lower(), {"color": palette[index % len(palette)]})
        for col, metric in ((1, "precision"), (2, "recall")):
            fig.add_trace(
                go.Scatter(
                    x=rows["k"].to_numpy(),
                    y=rows[metric].to_numpy(dtype=float),
                    name=str(method),
                    legendgroup=str(method),
                    showlegend=col == 1,
                    mode="lines+markers",
                    line=style,
                    hovertemplate=f"{method}<br>K=%{{x}}<br>{metric} %{{y:.3f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title={"text": "K"})
    fig.update_yaxes(range=[0, 1.05])
    fig.update_layout(title=title or None)
    return fig


# --------------------------------------------------------------------------- layers


def score_label(method: str, lam: float | None = None) -> str:
    """How a layer chart and its table name ``method``'s score: s(λ=…) for DEPARA, else the method.

    >>> score_label("DEPARA", 0.5), score_label("DEPARA"), score_label("PL-LogME", 0.5)
    ('s(λ=0.5)', 's(λ)', 'PL-LogME')
    """
    if method != "DEPARA":
        return method
    return "s(λ)" if lam is None else f"s(λ={lam:g})"


def layer_scores(
    layers: Sequence[str],
    s_V: ArrayLike,
    s_E: ArrayLike,
    s: ArrayLike,
    best: str | int | None = None,
    measured: ArrayLike | None = None,
    measured_name: str = "measured transfer",
    lambda_value: float | None = None,
    title: str = "",
    score_name: str | None = None,
) -> go.Figure:
    """Node (s_V), edge (s_E) and combined s(λ) similarity per layer; the recommended layer is
    marked with a band and a star. ``measured`` (e.g. fine-tuned accuracy) goes on a right axis.
    ``score_name`` names the solid curve when it is another method's score than s(λ). NaN in ``s``
    (a baseline undefined at a layer) or in ``measured`` (not measured) is a gap, named in the title.

    >>> fig = layer_scores(["conv1", "conv2"], [0.2, 0.5], [0.3, 0.6], [0.25, 0.55], best="conv2")
    >>> fig.layout.shapes[0].x0
    0.5
    """
    names = as_labels(layers, len(layers), "layers")
    count = len(names)
    if count == 0:
        raise PlotInputError("no layers were given", hint="pass at least one layer")
    combined_name = score_name or score_label("DEPARA", lambda_value)
    series = {
        "s_V (nodes)": as_finite_array(s_V, "s_V", ndim=1),
        "s_E (edges)": as_finite_array(s_E, "s_E", ndim=1),
        combined_name: as_gapped_curve(s, "s"),
    }
    for what, values in series.items():
        if values.size != count:
            raise PlotInputError(f"{what} has {values.size} values for {count} layers", hint="one value per layer")
    fig = make_subplots(specs=[[{"secondary_y": True}]]) if measured is not None else go.Figure()
    dashes = {"s_V (nodes)": "dot", "s_E (edges)": "dash", combined_name: "solid"}
    for what, values in series.items():
        trace = go.Scatter(x=names, y=_with_gaps(values), name=what, mode="lines+markers", line={"dash": dashes[what]})
        fig.add_trace(trace, **({"secondary_y": False} if measured is not None else {}))
    if measured is not None:
        measured_values = as_gapped_curve(measured, measured_name)
        if measured_values.size != count:
            raise PlotInputError(
                f"{measured_name} has {measured_values.size} values for {count} layers", hint="one value per layer"
            )
        measured_trace = go.Scatter(
            x=names, y=_with_gaps(measured_values), name=measured_name, mode="lines+markers", line={"color": "black", "width": 1}
        )
        fig.add_trace(measured_trace, secondary_y=True)
        fig.update_yaxes(title={"text": measured_name}, secondary_y=True, showgrid=False)
    if best is not None:
        if isinstance(best, (int, np.integer)) and not isinstance(best, bool):
            if not 0 <= best < count:
                raise PlotInputError(f"best layer index {best} is out of range 0..{count - 1}")
            best_index = int(best)
        elif str(best) in names:
            best_index = names.index(str(best))
        else:
            raise PlotInputError(f"best layer {best!r} is not one of the layers", hint="pick one of the layers")
        if not np.isfinite(series[combined_name][best_index]):
            raise PlotInputError(f"the recommended layer {names[best_index]!r} has no {combined_name} score", hint="recommend a layer that was scored")
        band = {"x0": best_index - 0.5, "x1": best_index + 0.5, "line_width": 0, "layer": "below"}
        fig.add_vrect(fillcolor=HIGHLIGHT_COLOR, opacity=0.12, **band)
        star = go.Scatter(
            x=[names[best_index]],
            y=[series[combined_name][best_index]],
            name=f"recommended: {names[best_index]}",
            mode="markers",
            marker={"symbol": "star", "size": 16, "color": HIGHLIGHT_COLOR},
        )
        fig.add_trace(star, **({"secondary_y": False} if measured is not None else {}))
    fig.update_xaxes(type="category", title={"text": "layer"})
    fig.update_yaxes(title={"text": "similarity to target"}, **({"secondary_y": False} if measured is not None else {}))
    gaps = {combined_name: series[combined_name]} | ({measured_name: measured_values} if measured is not None else {})
    fig.update_layout(title=_title_with_gaps(title, names, gaps) or None, hovermode="x unified", legend={"orientation": "h", "y": -0.25})
    return fig


def _with_gaps(values: np.ndarray) -> list[float | None]:
    """A curve's y values with NaN as None, which plotly draws as a gap."""
    return [float(v) if np.isfinite(v) else None for v in values]


def _title_with_gaps(title: str, names: Sequence[str], curves: Mapping[str, np.ndarray]) -> str:
    """``title`` with a second line naming the layers where a curve has no value."""
    missing = [f"{what}: {', '.join(n for n, v in zip(names, values) if not np.isfinite(v))}" for what, values in curves.items() if not np.isfinite(values).all()]
    if not missing:
        return title
    return f"{title}<br><sup>no value at {'; '.join(missing)}</sup>"


def layer_targets(
    layers: Sequence[str],
    curves: Mapping[str, ArrayLike],
    measured: Mapping[str, ArrayLike] | None = None,
    measured_name: str = "measured transfer",
    lambda_value: float | None = None,
    title: str = "",
    score_name: str | None = None,
) -> go.Figure:
    """One source's layers against several targets: s(λ) (or ``score_name``'s score) per target (one colour each) with a star at
    its recommended layer; where ``measured`` has a target's per-layer transfer (NaN where unknown),
    it is drawn dotted in the same colour on a right axis. NaN in a score curve (undefined at that
    layer) is a gap, named in the title.

    >>> fig = layer_targets(["conv1", "conv2"], {"depth": [0.2, 0.5], "edges": [0.4, 0.3]})
    >>> [t.name for t in fig.data]
    ['depth', 'depth: conv2', 'edges', 'edges: conv1']
    """
    names = as_labels(layers, len(layers), "layers")
    if not names or not curves:
        raise PlotInputError("no layers or no targets were given", hint="pass at least one layer and one target")
    measured = {t: np.asarray(v, dtype=np.float64) for t, v in (measured or {}).items() if v is not None and np.isfinite(np.asarray(v, dtype=np.float64)).any()}
    fig = make_subplots(specs=[[{"secondary_y": True}]]) if measured else go.Figure()
    on_left = {"secondary_y": False} if measured else {}
    palette = qualitative.Plotly
    scored: dict[str, np.ndarray] = {}
    for i, (target, values) in enumerate(curves.items()):
        s = as_gapped_curve(values, f"s for {target}")
        if s.size != len(names):
            raise PlotInputError(f"{target} has {s.size} values for {len(names)} layers", hint="one value per layer")
        scored[str(target)] = s
        colour = palette[i % len(palette)]
        best = int(np.nanargmax(s))
        fig.add_trace(go.Scatter(x=names, y=_with_gaps(s), name=str(target), mode="lines+markers", line={"color": colour}, legendgroup=str(target)), **on_left)
        fig.add_trace(go.Scatter(x=[names[best]], y=[s[best]], name=f"{target}: {names[best]}", mode="markers", legendgroup=str(target),
                                 marker={"symbol": "star", "size": 15, "color": colour, "line": {"width": 1, "color": "white"}}), **on_left)  # fmt: skip
        if target in measured:
            m = measured[target]
            if m.size != len(names):
                raise PlotInputError(f"{measured_name} of {target} has {m.size} values for {len(names)} layers", hint="one value per layer (NaN where unknown)")
            fig.add_trace(go.Scatter(x=names, y=_with_gaps(m), name=f"{target}: {measured_name}", mode="lines+markers", legendgroup=str(target),
                                     line={"color": colour, "dash": "dot", "width": 1}, marker={"symbol": "circle-open"}, connectgaps=False), secondary_y=True)  # fmt: skip
    if measured:
        fig.update_yaxes(title={"text": measured_name}, secondary_y=True, showgrid=False)
    combined = score_name or score_label("DEPARA", lambda_value)
    fig.update_xaxes(type="category", title={"text": "layer"})
    fig.update_yaxes(title={"text": f"{combined} to each target"}, **on_left)
    fig.update_layout(title=_title_with_gaps(title, names, scored) or None, hovermode="x unified", legend={"orientation": "h", "y": -0.25})
    return fig


# --------------------------------------------------------------------------- attributions
def cosine_histogram(matched: ArrayLike, null: ArrayLike, floor: float | None = None, title: str = "") -> go.Figure:
    """Per-probe node cosines of two models (same probe) against the mismatched-probe null, as
    overlaid probability histograms; ``floor`` (the null's 95% point of s_V) as a dashed line and
    s_V as a solid one.

    >>> fig = cosine_histogram([0.5, 0.6, 0.7], [0.1, 0.2, 0.3, 0.2], floor=0.3)
    >>> [t.name for t in fig.data]
    ['mismatched probes', 'same probe']
    """
    m = np.asarray(matched, dtype=float).ravel()
    z = np.asarray(null, dtype=float).ravel()
    if not (np.isfinite(m).all() and np.isfinite(z).all()) or not m.size or not z.size:
        raise PlotInputError("node cosines must be non-empty and finite")
    fig = go.Figure()
    # Binned here, not by plotly.js: the null holds every mismatched pairing's cosine (tens of
    # thousands of numbers), which would make the chart a large message for 30 bars.
    edges = np.linspace(min(m.min(), z.min()), max(m.max(), z.max()) + 1e-9, 31)
    if edges[-1] - edges[0] < 1e-6:
        edges = np.linspace(edges[0] - 5e-7, edges[0] + 5e-7, 31)
    centres, width = (edges[:-1] + edges[1:]) / 2, float(edges[1] - edges[0])
    for values, name, colour, opacity in ((z, "mismatched probes", "#b0b7c6", 0.75), (m, "same probe", HIGHLIGHT_COLOR, 0.6)):
        share = np.histogram(values, edges)[0] / values.size
        fig.add_trace(go.Bar(x=centres, y=share, width=width, name=name, marker_color=colour, opacity=opacity, hovertemplate="cosine %{x:.3f}: %{y:.1%}<extra>" + name + "</extra>"))
    fig.add_vline(x=float(m.mean()), line={"color": HIGHLIGHT_COLOR, "width": 2}, annotation_text="s_V", annotation_position="top")
    if floor is not None:
        fig.add_vline(x=float(floor), line={"color": "#5b6275", "width": 2, "dash": "dash"}, annotation_text="chance (95%)", annotation_position="bottom")
    fig.update_layout(barmode="overlay", bargap=0, title=title or None, xaxis_title="node cosine", yaxis_title="share of probes", legend={"orientation": "h", "y": -0.25})
    return fig




def attribution_overlay(
    image_uint8_hw3: ArrayLike,
    attribution_hw_or_chw: ArrayLike,
    signed: bool = True,
    clip_percentile: float = 99.0,
    alpha: float = 0.6,
    title: str = "",
    display: MapDisplay | None = None,
    limits: tuple[float, float] | None = None,
) -> go.Figure:
    """The photo with its attribution map on top (or as ``display`` says, which then replaces
    ``signed``, ``clip_percentile`` and ``alpha``; ``limits``: a colour range shared with other figures). Signed maps use a diverging scale centred on 0
    with limits ±(clip percentile of |a|); unsigned maps show |a| from 0. A channel axis,
    (3, H, W) or (H, W, 3), is summed away.

    >>> fig = attribution_overlay(np.zeros((4, 4, 3), np.uint8), np.linspace(-1, 1, 16).reshape(4, 4),
    ...                           clip_percentile=100)
    >>> fig.data[1].zmin, fig.data[1].zmax
    (-1.0, 1.0)
    """
    display = display or MapDisplay(opacity=alpha, signed=signed, clip_percentile=clip_percentile)
    fig = go.Figure(attribution_traces(image_uint8_hw3, attribution_hw_or_chw, display, display.view != "masked", limits))
    style_image_axes(fig)
    fig.update_layout(title=title or None, margin={"l": 10, "r": 10, "t": 50 if title else 10, "b": 10})
    return fig


def attribution_grid(
    images: Sequence[ArrayLike],
    maps: Sequence[Sequence[ArrayLike]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    signed: bool = True,
    clip_percentile: float = 99.0,
    alpha: float = 0.6,
    title: str = "",
    display: MapDisplay | None = None,
) -> go.Figure:
    """Overlays in a grid: one row per probe image, one column per model, ``maps[row][col]``.
    Each cell is scaled on its own clip percentile, so no shared colour bar is drawn, unless
    ``display.shared_scale``: then one range for all cells, with one colour bar.

    The cells are one mosaic on one pair of axes (column labels on top, row labels on the left),
    not a subplot each: with 24 cells, subplots took about a second to build here and as long
    again to draw. Each cell is one picture, the map drawn over its photo here
    (:func:`~depara_core.viz.validate.attribution_picture`); hovering a cell says which it is and
    its colour range.

    >>> img = np.zeros((4, 4, 3), np.uint8); a = np.ones((4, 4))
    >>> fig = attribution_grid([img], [[a, -a]], ["probe 1"], ["vgg16", "resnet18"])
    >>> [t.type for t in fig.data], list(fig.layout.xaxis.ticktext), fig.data[1].x0
    (['image', 'image', 'heatmap'], ['vgg16', 'resnet18'], 5)
    """
    rows, cols = len(row_labels), len(col_labels)
    if rows == 0 or cols == 0:
        raise PlotInputError("the grid needs at least one row and one column")
    if len(images) != rows or len(maps) != rows:
        raise PlotInputError(
            f"got {len(images)} images and {len(maps)} map rows for {rows} row labels",
            hint="pass one image and one row of maps per probe",
        )
    for r, row_maps in enumerate(maps):
        if len(row_maps) != cols:
            raise PlotInputError(f"row {r} has {len(row_maps)} maps for {cols} columns", hint="one map per model")
    photos = [checked_image(image) for image in images]
    height, width = max(p.shape[0] for p in photos), max(p.shape[1] for p in photos)
    gap = max(1, round(0.06 * max(height, width)))
    step_x, step_y = width + gap, height + gap
    display = display or MapDisplay(opacity=alpha, signed=signed, clip_percentile=clip_percentile)
    shown = [[display.prepare(reduce_attribution(maps[r][c], *photos[r].shape[:2])) for c in range(cols)] for r in range(rows)]  # each map prepared once
    limits = display.limits(m for row in shown for m in row) if display.shared_scale else None
    traces: list[dict] = []
    ranges = np.zeros((rows, cols, 2))
    for r in range(rows):
        for c in range(cols):
            ranges[r, c] = limits or attribution_limits(shown[r][c], display.signed, display.clip_percentile)
            traces += attribution_traces(photos[r], maps[r][c], display, False, tuple(ranges[r, c]), offset=(c * step_x, r * step_y), hover=False, prepared=shown[r][c])
    centres_x, centres_y = [c * step_x + (width - 1) / 2 for c in range(cols)], [r * step_y + (height - 1) / 2 for r in range(rows)]
    where = [[f"{col_labels[c]} · {row_labels[r]}<br>colours span {ranges[r, c, 0]:.3g} to {ranges[r, c, 1]:.3g}" for c in range(cols)] for r in range(rows)]
    traces.append({"type": "heatmap", "z": np.zeros((rows, cols), np.float32), "x0": centres_x[0], "dx": step_x, "y0": centres_y[0], "dy": step_y, "text": where,
                   "hovertemplate": "%{text}<extra></extra>", "opacity": 0.0, "showscale": False, "colorscale": [[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]],
                   "name": "cells"})  # what hovering a cell says  # fmt: skip
    if limits is not None and display.view != "masked":  # one colour range: its bar
        traces.append({"type": "heatmap", "z": [[limits[0], limits[1]]], "x0": centres_x[0], "dx": 0.5, "y0": centres_y[0], "dy": 0.5, "opacity": 0.0, "hoverinfo": "skip",
                       "zmin": limits[0], "zmax": limits[1], "colorscale": SIGNED_ATTRIBUTION_COLORSCALE if display.signed else UNSIGNED_ATTRIBUTION_COLORSCALE,
                       "showscale": True, "name": "colour scale", "colorbar": {"title": {"text": "attribution" if display.signed else "|attribution|"}}})  # fmt: skip
    fig = go.Figure(traces)
    style_image_axes(fig)
    fig.update_xaxes(showticklabels=True, side="top", ticks="", tickvals=[c * step_x + (width - 1) / 2 for c in range(cols)], ticktext=[str(x) for x in col_labels],
                     range=[-0.5, cols * step_x - gap - 0.5], constrain="domain")  # fmt: skip
    fig.update_yaxes(showticklabels=True, ticks="", tickvals=[r * step_y + (height - 1) / 2 for r in range(rows)], ticktext=[str(y) for y in row_labels],
                     range=[rows * step_y - gap - 0.5, -0.5], autorange=False, constrain="domain")  # fmt: skip
    fig.update_layout(
        title=title or None,
        height=60 + 170 * rows,
        margin={"l": label_margin(row_labels), "r": 40, "t": (90 if title else 40) + max(0, label_margin(col_labels) - 80) // 3, "b": 10},
    )
    return fig


def figure_config(filename: str) -> dict:
    """The plotly ``config`` for a chart whose toolbar camera button downloads an SVG.

    >>> figure_config("ranking.svg")["toImageButtonOptions"]
    {'format': 'svg', 'filename': 'ranking'}
    """
    stem = PurePath(str(filename)).name
    if stem.lower().endswith(".svg"):
        stem = stem[:-4]
    return {"toImageButtonOptions": {"format": "svg", "filename": stem or "figure"}, "displaylogo": False}
