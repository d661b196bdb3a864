"""The task tree, the similarity matrix and a target's ranking in one figure whose λ slider moves in
the browser.

The server computes every λ of a grid once; the slider only switches between those frames, so a
step costs no round trip to the server, and the figure stays live in a saved HTML report. The
frames are drawn by the same builders as the app's own figures (:func:`~depara_core.viz.views.task_view`'s
colour range and diagonal, :func:`~depara_core.viz.plots.tree_trace`, :func:`~depara_core.viz.plots.ranking_trace`).

>>> import numpy as np
>>> from depara_core.compare.terms import SimilarityTerms
>>> terms = SimilarityTerms(("a", "b", "c"), np.eye(3), np.full((3, 3), 0.5) + np.eye(3) * 0.5)
>>> fig = lambda_sweep(terms, "a", lam=1.0, lams=[0.0, 1.0])
>>> [f.name for f in fig.frames], fig.layout.sliders[0].active
(['0', '1'], 1)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from depara_core.compare.terms import LAMBDA_METHODS, SimilarityTerms
from depara_core.compare.tree import task_tree
from depara_core.viz import plots
from depara_core.viz.validate import PlotInputError
from depara_core.viz.views import colour_range, diagonal_trace, source_notes

__all__ = ["lambda_grid", "lambda_sweep", "MAX_SWEEP_MODELS", "RANKED_SHOWN", "SWEEP_META"]

MAX_SWEEP_MODELS = 60
"""Above this many models the frames grow too large to send (n² values per λ)."""
RANKED_SHOWN = 12
"""Sources shown in the sweep's ranking (the best ones)."""
SWEEP_META = "depara-lambda-sweep"
"""The figure's ``layout.meta``: how a page's script finds the sweep among its charts."""


def lambda_grid(lam: float, upper: float = 3.0, step: float = 0.1, most: int = 41) -> tuple[float, ...]:
    """λ from 0 to ``max(upper, lam)`` by ``step`` (coarser where that would take more than ``most``
    values), with ``lam`` itself in it.

    >>> lambda_grid(0.25, upper=0.5, step=0.25), lambda_grid(0.33, upper=0.2)[-2:], len(lambda_grid(100.0))
    ((0.0, 0.25, 0.5), (0.3, 0.33), 41)
    """
    if not (np.isfinite(lam) and lam >= 0 and step > 0 and most >= 2):
        raise PlotInputError(f"λ {lam!r} and step {step!r} must be finite, λ ≥ 0 and the step > 0", hint="pick λ on the slider")
    top = max(upper, float(lam))
    step = max(step, top / (most - 1))
    grid = {round(k * step, 10) for k in range(int(np.floor(top / step + 1e-9)) + 1)}
    return tuple(sorted(grid | {round(float(lam), 10)}))


def lambda_sweep(
    terms: SimilarityTerms, target: str, lam: float = 1.0, method: str = "DEPARA", lams: Sequence[float] | None = None, linkage: str = "average"
) -> go.Figure:
    """One figure (tree and matrix above, ``target``'s best sources below) with a frame per λ of
    ``lams`` (default :func:`lambda_grid` around ``lam``) and a slider that starts at ``lam``."""
    if method not in LAMBDA_METHODS:
        raise PlotInputError(f"λ changes nothing for {method}", hint=f"choose one of {', '.join(LAMBDA_METHODS)}")
    n = len(terms.names)
    if n < 3 or n > MAX_SWEEP_MODELS:
        raise PlotInputError(f"a λ sweep needs 3 to {MAX_SWEEP_MODELS} models, not {n}", hint="choose fewer models, or move λ on the page's slider")
    terms.index(target)  # a clear error for an unknown target
    grid = tuple(float(v) for v in (lams if lams is not None else lambda_grid(lam)))
    gaps = np.abs(np.asarray(grid) - float(lam))
    if not grid or gaps.min() > 1e-9 or len({_name(v) for v in grid}) < len(grid):
        raise PlotInputError(f"λ = {lam:g} must be one of the sweep's values, each value once", hint="include it in lams")
    frames = [_frame(terms, target, v, method, linkage) for v in grid]
    active = int(gaps.argmin())
    fig = make_subplots(rows=2, cols=2, column_widths=[0.3, 0.7], row_heights=[0.6, 0.4], specs=[[{}, {}], [{"colspan": 2}, None]],
                        horizontal_spacing=0.02, vertical_spacing=0.08)  # fmt: skip
    for trace, (row, col) in zip(frames[active].data, [(1, 1), (1, 2), (1, 2), (2, 1)]):
        fig.add_trace(trace, row=row, col=col)
    longest = [label for f in frames for label in f.layout.yaxis.ticktext] + [label for f in frames for label in f.data[3].y]
    fig.update_layout(frames[active].layout)
    fig.update_yaxes(row=1, col=1, tickvals=list(range(n)), range=[n - 0.5, -0.5], showgrid=False, zeroline=False)
    # fixed ranges: the frames do not rescale the axes, and one λ compares with another at a glance
    widest = max(max(x for x in f.data[0].x if x is not None) for f in frames)
    fig.update_xaxes(row=1, col=1, title={"text": "distance"}, zeroline=False, range=[0, 1.05 * widest or 1.0])
    fig.update_xaxes(row=1, col=2, type="category", categoryorder="array", side="top", tickangle=-45, showgrid=False, range=[-0.5, n - 0.5])
    fig.update_yaxes(row=1, col=2, type="category", categoryorder="array", showticklabels=False, showgrid=False, range=[n - 0.5, -0.5])
    best = [score for f in frames for score in f.data[3].x]
    fig.update_yaxes(row=2, col=1, type="category", categoryorder="array", range=[len(frames[0].data[3].y) - 0.5, -0.5])
    low, high = min(0.0, min(best)), max(0.0, max(best))  # bars start at 0, whatever the scores' sign
    pad = 0.05 * ((high - low) or 1.0)
    fig.update_xaxes(row=2, col=1, title={"text": f"score for {target}"}, range=[low - pad * (low < 0), high + pad])
    fig.frames = frames
    steps = [{"label": f"{v:g}", "method": "animate", "args": [[_name(v)], {"mode": "immediate", "frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}}]}
             for v in grid]  # fmt: skip
    top = int(0.7 * plots.label_margin(terms.names)) + 70
    fig.update_layout(
        height=max(620, 22 * n + 26 * min(n - 1, RANKED_SHOWN) + top + 180),
        margin={"l": plots.label_margin(longest), "r": 10, "t": top, "b": 90},
        sliders=[{"active": active, "steps": steps, "currentvalue": {"prefix": "λ = "}, "pad": {"t": 30}, "x": 0, "len": 1.0}],
        showlegend=False,
        title_font={"size": 13},
        meta=SWEEP_META,
    )
    return fig


def _frame(terms: SimilarityTerms, target: str, lam: float, method: str, linkage: str) -> go.Frame:
    """Everything λ moves: the tree's lines and leaves, the reordered matrix and its colours, the ranking."""
    m = terms.matrix(method, lam)
    tree = task_tree(m, terms.names, method=linkage)
    lines, leaves = plots.tree_trace(tree.linkage, tree.labels)
    order = list(tree.order)
    colours = colour_range(terms, m, method, lam, "pairs")
    heat = go.Heatmap(
        z=m[np.ix_(order, order)].astype(np.float32), x=leaves, y=leaves, zmin=colours.lo, zmax=colours.hi, colorscale="Viridis",
        colorbar={"title": {"text": "similarity" + (f"<br>pairs {colours.lo:.3g}<br>to {colours.hi:.3g};<br>diagonal ×" if colours.lo is not None else "")},
                  "len": 0.55, "y": 1.0, "yanchor": "top"},
        hovertemplate="source: %{y}<br>target: %{x}<br>value: %{z:.4f}<extra></extra>",
    )  # fmt: skip
    ranked = terms.rank_sources(target, lam, method)[:RANKED_SHOWN]
    names = [name for name, _ in ranked]
    bars = plots.ranking_trace(names, [score for _, score in ranked], highlight=names[0], score_label=terms.method_label(method, lam), marked=source_notes(names, target))
    title = f"{terms.method_label(method, lam)} · rows: source, columns: target · best sources for {target}"
    layout = {
        "title": {"text": title},
        "yaxis": {"ticktext": leaves},
        "xaxis2": {"categoryarray": leaves},
        "yaxis2": {"categoryarray": leaves},
        "yaxis3": {"categoryarray": list(bars.y)},
    }
    return go.Frame(name=_name(lam), data=[lines, heat, diagonal_trace(terms, tree, method, lam), bars], layout=layout, traces=[0, 1, 2, 3])


def _name(lam: float) -> str:
    """A frame's name: λ to ten digits (labels show fewer)."""
    return f"{lam:.10g}"
