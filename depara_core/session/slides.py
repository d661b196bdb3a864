"""The few figures a group meeting needs, in presentation order: the task tree, the similarity
matrix, the ranking of sources for the target, the comparison with measured transfer, the
attribution maps chosen for showing and the layer charts. The app's presentation view shows them
one per screen; the export bundle's summary is made of them.

>>> from depara_core.session.workspace import demo_workspace
>>> ws = demo_workspace()
>>> [s.title for s in slides(ws, 1.0, target="m1")]
['task tree', 'similarity matrix', 'ranking of sources for m1', "λ sweep (the figure's own slider)"]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import plotly.graph_objects as go

from depara_core.compare.terms import LAMBDA_METHODS, SimilarityTerms
from depara_core.errors import DeparaError
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.evaluation.layers import LayerTruth
from depara_core.evaluation.methods import evaluate_methods
from depara_core.evaluation.ranking import ground_truth_for
from depara_core.session.workspace import Workspace
from depara_core.viz import plots
from depara_core.viz.display import MapDisplay
from depara_core.viz.sweep import MAX_SWEEP_MODELS, lambda_sweep
from depara_core.viz.views import attribution_grid_view, layer_view, ranking_view, task_view

__all__ = ["Slide", "MapsShown", "slides", "deck", "presentation_style"]


@dataclass(frozen=True)
class MapsShown:
    """Which attribution maps a deck shows: models (columns), probes (rows, by index) and how the
    maps are drawn. Names and indices the workspace does not have are left out."""

    models: tuple[str, ...]
    probes: tuple[int, ...]
    display: MapDisplay = MapDisplay()


@dataclass(frozen=True)
class Slide:
    """One figure to show on its own, with an optional table beside it."""

    title: str
    figure: go.Figure = field(repr=False)
    table: pd.DataFrame | None = field(default=None, repr=False)
    height: int | None = None  # on screen, where the figure needs more than the usual


def slides(
    ws: Workspace, lam: float, *, target: str | None = None, ground_truth: GroundTruth | None = None,
    layer_truth: LayerTruth | None = None, relevant: int = 5, method: str = "DEPARA", maps: MapsShown | None = None,
) -> list[Slide]:  # fmt: skip
    """The presentation figures of ``ws`` at ``lam`` (``method``'s matrix and ranking), all drawn."""
    return [draw() for _, draw in deck(ws, lam, target=target, ground_truth=ground_truth, layer_truth=layer_truth, relevant=relevant, method=method, maps=maps)]


def deck(
    ws: Workspace, lam: float, *, target: str | None = None, ground_truth: GroundTruth | None = None,
    layer_truth: LayerTruth | None = None, relevant: int = 5, method: str = "DEPARA",
    sweep_figure: Callable[[SimilarityTerms, str, float, str], go.Figure] | None = None, maps: MapsShown | None = None,
) -> list[tuple[str, Callable[[], Slide]]]:  # fmt: skip
    """The titles of :func:`slides`, each with the function that draws its slide: a page showing one
    slide at a time draws only that one. ``sweep_figure`` builds the λ sweep (default
    :func:`~depara_core.viz.sweep.lambda_sweep`; an app passes its cached one, so the slide costs
    nothing after the page has drawn the sweep). ``maps``: attribution maps to show, e.g. those chosen
    on the app's Attribution maps page, drawn the same way.

    >>> from depara_core.session.workspace import demo_workspace
    >>> [title for title, _ in deck(demo_workspace(), 1.0, method="RSA")]
    ['task tree', 'similarity matrix', 'ranking of sources for m0']
    """
    if ws.terms is None:
        raise DeparaError("the workspace has no results yet", "compute before presenting")
    terms = ws.terms
    t = target if target in terms.names else terms.names[0]

    def tree() -> Slide:
        return Slide("task tree", task_view(terms, lam, method).tree_fig)

    def matrix() -> Slide:
        return Slide("similarity matrix", task_view(terms, lam, method).matrix_fig)

    def ranking() -> Slide:
        fig, table = ranking_view(terms, t, lam, method)
        return Slide(f"ranking of sources for {t}", fig, table)

    out: list[tuple[str, Callable[[], Slide]]] = [("task tree", tree), ("similarity matrix", matrix), (f"ranking of sources for {t}", ranking)]
    if method in LAMBDA_METHODS and 3 <= len(terms.names) <= MAX_SWEEP_MODELS:
        title = "λ sweep (the figure's own slider)"

        def sweep() -> Slide:
            fig = (sweep_figure or lambda_sweep)(terms, t, lam, method)
            return Slide(title, fig, height=int(1.3 * fig.layout.height))

        out.append((title, sweep))
    if ground_truth is not None:
        try:
            gt = ground_truth_for(terms.names, ground_truth)
        except DeparaError:
            gt = None  # no measured transfer among these models: nothing to show
        if gt is not None:
            r = max(1, min(relevant, min(len(gt.candidates(x)) for x in gt.targets)))

            def measured() -> Slide:
                ev = evaluate_methods(terms, gt, lam, r)
                return Slide("precision–recall", plots.pr_curve(ev.pr_points()), ev.summary)

            out.append(("precision–recall", measured))
    if maps is not None:
        models = [m for m in dict.fromkeys(maps.models) if m in ws.names]
        rows = [i for i in dict.fromkeys(maps.probes) if 0 <= i < len(ws.probes)]
        if models and rows:
            maps_title = f"attribution maps of {len(rows)} probe{'s' * (len(rows) != 1)}"

            def attribution() -> Slide:
                columns = [(m, ws.graph(m), ws.model(m).spec.preprocess) for m in models]
                return Slide(maps_title, attribution_grid_view(columns, ws.probes, rows, maps.display))

            out.append((maps_title, attribution))
    for source, tgt in list(ws.layer_results):  # a copy: the session may add more meanwhile
        out.append((f"layers of {source} for {tgt}", lambda source=source, tgt=tgt: _layers(ws, source, tgt, lam, layer_truth)))
    return out


def _layers(ws: Workspace, source: str, target: str, lam: float, layer_truth: LayerTruth | None) -> Slide:
    scores = ws.layer_results[(source, target)]
    measured = layer_truth.series(source, target, scores.layers) if layer_truth is not None else None
    fig, table = layer_view(scores, lam, [ws.layer_label(source, layer) for layer in scores.layers], measured, layer_truth.name if layer_truth else "measured transfer")
    return Slide(f"layers of {source} for {target}", fig, table)


def presentation_style(fig: go.Figure, font_size: int = 20, height: int = 760) -> go.Figure:
    """A copy of ``fig`` for a projector: large fonts everywhere (titles, legends and the tick labels,
    which figures may set smaller for the page), a tall drawing area, and margins that hold the
    labels at that size.

    >>> fig = presentation_style(plots.ranking_bar(["resnet18", "a-much-longer-model-name"], [0.4, 0.7]))
    >>> fig.layout.yaxis.tickfont.size, fig.layout.margin.l >= plots.label_margin(["a-much-longer-model-name"], 16)
    (16, True)
    """
    big = go.Figure(fig)
    tick = max(14, font_size - 4)
    big.update_layout(font={"size": font_size}, title_font={"size": font_size + 6}, legend_font={"size": tick}, height=height)
    big.update_xaxes(tickfont={"size": tick}, title_font={"size": font_size})
    big.update_yaxes(tickfont={"size": tick}, title_font={"size": font_size})
    left, bottom = _labels(big, "y"), _labels(big, "x")
    margin = big.layout.margin
    if left:
        big.update_layout(margin_l=max(margin.l or 0, plots.label_margin(left, tick) + (font_size + 12 if big.layout.yaxis.title.text else 0)))
    if bottom and max(len(t) for t in bottom) > 6:  # long category names on x are drawn slanted
        big.update_layout(margin_b=max(margin.b or 0, plots.label_margin(bottom, tick) + font_size + 12))
    return big


def _labels(fig: go.Figure, axis: str) -> list[str]:
    """The text labels along ``axis`` (its tick texts, else the category values of its traces)."""
    texts = [t for name in fig.layout if name.startswith(f"{axis}axis") for t in (fig.layout[name].ticktext or ())]
    if texts:
        return [str(t) for t in texts]
    values = [v for trace in fig.data for v in _values(getattr(trace, axis, None)) if isinstance(v, str)]
    return list(dict.fromkeys(values))


def _values(seq: object) -> tuple:
    return () if seq is None or isinstance(seq, str) else tuple(seq)  # arrays, tuples or lists
