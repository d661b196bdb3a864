"""The λ sweep: every frame is what the app's own figures show at that λ, and bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest

from depara_core.compare.terms import SimilarityTerms
from depara_core.errors import DeparaError
from depara_core.viz import plots
from depara_core.viz.sweep import RANKED_SHOWN, lambda_grid, lambda_sweep
from depara_core.viz.validate import PlotInputError
from depara_core.viz.views import ranking_view, task_view


def _terms(n: int = 7, seed: int = 0) -> SimilarityTerms:
    rng = np.random.default_rng(seed)
    names = tuple(f"task{i}" for i in range(n - 2)) + ("task0#2", "task1@untrained")

    def sym() -> np.ndarray:
        a = rng.random((n, n))
        a = (a + a.T) / 2
        np.fill_diagonal(a, 1.0)
        return a

    return SimilarityTerms(names, sym(), sym())


def test_every_frame_is_what_the_page_draws_at_its_lambda():
    terms = _terms()
    fig = lambda_sweep(terms, "task0", lam=1.0, lams=[0.0, 0.5, 1.0, 2.5])
    assert [f.name for f in fig.frames] == ["0", "0.5", "1", "2.5"]
    for frame in fig.frames:
        lam = float(frame.name)
        view = task_view(terms, lam)
        lines, heat, diagonal, bars = frame.data
        order = list(view.tree.order)
        # the numbers, against the terms themselves: s = s_V + λ·s_E in the tree's order
        expected = (terms.s_V + lam * terms.s_E)[np.ix_(order, order)]
        np.testing.assert_allclose(np.asarray(heat.z, float), expected, rtol=1e-6)
        assert list(heat.x) == list(heat.y) == view.tree.ordered_labels == list(frame.layout.xaxis2.categoryarray)
        assert (heat.zmin, heat.zmax) == (view.matrix_fig.data[0].zmin, view.matrix_fig.data[0].zmax)
        assert list(diagonal.x) == view.tree.ordered_labels
        assert lines.x == view.tree_fig.data[0].x and lines.y == view.tree_fig.data[0].y
        assert list(frame.layout.yaxis.ticktext) == list(view.tree_fig.layout.yaxis.ticktext)
        ranking, _ = ranking_view(terms, "task0", lam)
        assert bars.y == ranking.data[0].y[:RANKED_SHOWN]
        np.testing.assert_array_equal(bars.x, ranking.data[0].x[:RANKED_SHOWN])
        assert bars.marker.color[0] == plots.HIGHLIGHT_COLOR
        assert "task0#2 (seed twin)" in bars.y and "task1@untrained (untrained control)" in bars.y
        assert f"s = s_V + {lam:g}·s_E" in frame.layout.title.text


def test_the_figure_opens_on_the_chosen_lambda_with_axes_that_hold_every_frame():
    terms = _terms()
    fig = lambda_sweep(terms, "task2", lam=0.5, lams=[0.0, 0.5, 3.0])
    active = fig.frames[1]
    assert fig.layout.sliders[0].active == 1
    for shown, framed in zip(fig.data, active.data):
        drawn = {k: v for k, v in shown.to_plotly_json().items() if k not in ("xaxis", "yaxis")}  # the subplot it sits in
        assert str(drawn) == str(framed.to_plotly_json())
    assert fig.layout.title.text == active.layout.title.text
    farthest = max(max(x for x in f.data[0].x if x is not None) for f in fig.frames)
    assert fig.layout.xaxis.range[1] >= farthest  # the tree's distance axis
    best = max(max(f.data[3].x) for f in fig.frames)
    assert fig.layout.xaxis3.range[1] >= best  # the ranking's score axis
    step = fig.layout.sliders[0].steps[2]
    assert step.method == "animate" and list(step.args[0]) == ["3"] and step.args[1]["frame"]["redraw"] is True


def test_the_grid_holds_lambda_and_stays_small():
    assert lambda_grid(1.0)[:3] == (0.0, 0.1, 0.2) and 1.0 in lambda_grid(1.0) and lambda_grid(1.0)[-1] == 3.0
    assert 0.37 in lambda_grid(0.37) and len(lambda_grid(0.37)) == 32
    wide = lambda_grid(100.0)
    assert len(wide) <= 41 and wide[-1] == 100.0 and np.all(np.diff(wide) > 0)
    for bad in (float("nan"), -1.0, float("inf")):
        with pytest.raises(PlotInputError):
            lambda_grid(bad)


def test_bad_choices_are_refused_with_a_reason():
    terms = _terms()
    with pytest.raises(PlotInputError, match="changes nothing for RSA"):
        lambda_sweep(terms, "task0", method="RSA")
    with pytest.raises(PlotInputError, match="3 to"):
        lambda_sweep(SimilarityTerms(("a", "b"), np.eye(2), np.eye(2)), "a")
    with pytest.raises(PlotInputError, match="must be one of the sweep's values"):
        lambda_sweep(terms, "task0", lam=0.7, lams=[0.0, 1.0])
    with pytest.raises(PlotInputError, match="each value once"):
        lambda_sweep(terms, "task0", lam=1.0, lams=[1.0, 1.0])
    with pytest.raises(DeparaError):
        lambda_sweep(terms, "no such task")


def test_a_sweep_of_a_larger_zoo_ranks_only_the_best_sources():
    terms = _terms(n=20, seed=3)
    fig = lambda_sweep(terms, "task4", lam=1.0, lams=[1.0])
    assert len(fig.frames[0].data[3].y) == RANKED_SHOWN and len(fig.frames[0].data[1].x) == 20


def test_the_score_axis_holds_bars_of_either_sign():
    terms = _terms()
    negative = SimilarityTerms(terms.names, -terms.s_V - 1.0, -terms.s_E)
    fig = lambda_sweep(negative, "task0", lam=1.0, lams=[0.0, 1.0])
    lo, hi = fig.layout.xaxis3.range
    assert lo <= min(min(f.data[3].x) for f in fig.frames) and hi >= 0.0
