"""Result views: the similarity matrix states its colour range and marks the diagonal."""

from __future__ import annotations

import numpy as np
import pytest

from depara_core.compare.terms import SimilarityTerms
from depara_core.viz.views import task_view


def _terms():
    s_v = np.array([[1.0, 0.74, 0.75], [0.74, 1.0, 0.76], [0.75, 0.76, 1.0]])
    return SimilarityTerms(("a", "b", "c"), s_v, np.eye(3) * 0.5 + 0.5)


def test_pair_scale_states_its_range_and_marks_the_diagonal():
    view = task_view(_terms(), 1.0)
    heat = view.matrix_fig.data[0]
    assert "colours span the pairs" in view.matrix_fig.layout.title.text
    off = view.matrix[~np.eye(3, dtype=bool)]
    assert (heat.zmin, heat.zmax) == (off.min(), off.max())
    diag = [t for t in view.matrix_fig.data if t.name == "diagonal"]
    assert diag and list(diag[0].x) == list(diag[0].y) and len(diag[0].x) == 3


def test_fixed_scale_is_zero_to_one_plus_lambda():
    view = task_view(_terms(), 2.0, scale="fixed")
    assert (view.matrix_fig.data[0].zmin, view.matrix_fig.data[0].zmax) == (0.0, 3.0)
    assert not [t for t in view.matrix_fig.data if t.name == "diagonal"]
    rsa_like = task_view(_terms(), 2.0, method="DEPARA-V", scale="fixed")
    assert (rsa_like.matrix_fig.data[0].zmin, rsa_like.matrix_fig.data[0].zmax) == (-1.0, 1.0)


def test_side_by_side_edges_share_one_colour_range():
    from depara_core.compare.pairwise import edge_similarity, upper_triangle
    from depara_core.engine.run import compute_graphs
    from depara_core.models.toy import toy_models
    from depara_core.probes.registry import load_builtin
    from depara_core.viz.views import edge_pair_view

    probes = load_builtin("noise", 6)
    a, b = [compute_graphs(m, probes, [m.spec.encoder])[m.spec.encoder] for m in toy_models(2, seed=5)]
    fa, fb, s_e = edge_pair_view(a, b)
    both = np.concatenate([upper_triangle(a.edges), upper_triangle(b.edges)])
    for fig in (fa, fb):
        assert (fig.data[0].zmin, fig.data[0].zmax) == (float(both.min()), float(both.max()))
        assert "shared" in fig.layout.title.text
    assert s_e == edge_similarity(a, b)


def test_ranking_marks_seed_twins_and_untrained_controls():
    from depara_core.viz.plots import MARKED_COLOR
    from depara_core.viz.views import ranking_view

    names = ("depth", "depth#2", "normals", "depth@untrained")
    s = np.array([[1, 0.9, 0.2, 0.1], [0.9, 1, 0.3, 0.2], [0.2, 0.3, 1, 0.4], [0.1, 0.2, 0.4, 1]])
    fig, table = ranking_view(SimilarityTerms(names, s, s), "depth", 1.0)
    assert list(table["note"]) == ["seed twin", "", "untrained control"]
    assert fig.data[0].y == ("depth#2 (seed twin)", "normals", "depth@untrained (untrained control)")
    assert fig.data[0].marker.color[2] == MARKED_COLOR


def test_several_targets_share_one_layer_chart_and_each_gets_its_recommendation():
    from depara_core.compare.layers import LayerScores
    from depara_core.viz.views import layer_targets_view

    layers = ("conv1", "conv2", "conv3", "fc")
    near = LayerScores("src", "near", layers, np.array([0.1, 0.2, 0.3, 0.9]), np.array([0.5, 0.5, 0.6, 0.8]))
    far = LayerScores("src", "far", layers, np.array([0.6, 0.2, 0.1, 0.0]), np.array([0.9, 0.4, 0.3, 0.2]))
    measured = {"near": np.array([0.2, np.nan, 0.5, 0.7]), "far": None}
    fig, table = layer_targets_view([near, far], 0.5, measured=measured, measured_name="accuracy")
    assert list(table["target"]) == ["near", "far"] and list(table["recommended layer"]) == ["fc", "conv1"]
    np.testing.assert_allclose(table["s(λ=0.5)"], [0.9 + 0.4, 0.6 + 0.45])
    assert table["best measured layer"].tolist() == ["fc", ""] and table["Spearman ρ vs measured"].iloc[0] == pytest.approx(1.0)
    stars = {t.name: list(t.x) for t in fig.data if t.mode == "markers"}
    assert stars == {"near: fc": ["fc"], "far: conv1": ["conv1"]}
    curve = {t.name: t for t in fig.data}
    assert curve["near: accuracy"].yaxis == "y2" and curve["near: accuracy"].y[1] is None  # unmeasured layer: a gap
    assert curve["near"].line.color == curve["near: accuracy"].line.color != curve["far"].line.color
    with pytest.raises(ValueError, match="different sources or layers"):
        layer_targets_view([near, LayerScores("other", "far", layers, far.s_V, far.s_E)], 1.0)


def test_a_baseline_undefined_at_a_layer_is_drawn_as_a_gap_not_as_zero():
    from depara_core.compare.layers import LayerScores
    from depara_core.viz.views import layer_targets_view, layer_view

    layers = ("conv1", "conv2", "conv3")
    # CKA is undefined at conv1 (e.g. constant features) and negative elsewhere: a 0 there would win
    scores = LayerScores("src", "tgt", layers, np.array([0.1, 0.2, 0.3]), np.array([0.4, 0.5, 0.6]), others={"CKA": np.array([np.nan, -0.4, -0.2])})
    fig, table = layer_view(scores, 1.0, method="CKA")
    curve = next(t for t in fig.data if t.name == "CKA")
    assert curve.y[0] is None and curve.y[1:] == (-0.4, -0.2)
    star = next(t for t in fig.data if t.name.startswith("recommended"))
    assert star.x == ("conv3",) and "no value at CKA: conv1" in fig.layout.title.text
    assert np.isnan(table["CKA"].iloc[0]) and table["recommended"].tolist() == [False, False, True]
    fig, table = layer_targets_view([scores], 1.0, method="CKA")
    assert next(t for t in fig.data if t.name == "tgt").y[0] is None and table["recommended layer"].tolist() == ["conv3"]


def test_a_baseline_undefined_at_every_layer_is_not_offered_and_cannot_pick_a_layer():
    from depara_core.compare.layers import LayerScores
    from depara_core.errors import DeparaError

    scores = LayerScores("src", "tgt", ("a", "b"), np.array([0.1, 0.2]), np.array([0.4, 0.5]), others={"CKA": np.array([np.nan, np.nan]), "RSA": np.array([0.3, 0.1])})
    assert "CKA" not in scores.methods and "RSA" in scores.methods
    with pytest.raises(DeparaError, match="CKA is undefined at every layer of src"):
        scores.best(1.0, "CKA")


def test_each_model_s_enlarged_probe_holds_its_own_map_and_a_shared_scale_is_shared():
    """The enlarged view: one figure per column with the map attribution_overlay draws for that model
    alone; one colour range for all when asked; the masked view has no map to scale."""
    from depara_core.engine.run import compute_graphs
    from depara_core.models.toy import toy_models
    from depara_core.probes.registry import load_builtin
    from depara_core.viz.display import MapDisplay
    from depara_core.viz.plots import attribution_overlay
    from depara_core.viz.views import attribution_cells, probe_views

    probes = load_builtin("noise", 4)
    columns = [(f"m{k}", compute_graphs(m, probes, [m.spec.encoder])[m.spec.encoder], m.spec.preprocess) for k, m in enumerate(toy_models(3, seed=3))]
    figs = probe_views(columns, probes, 2, MapDisplay())
    assert [f.layout.title.text for f in figs] == ["m0", "m1", "m2"]
    for (label, g, pre), fig in zip(columns, figs):
        alone = attribution_overlay(*attribution_cells(g, pre, probes, 2), title=label).data[1]
        heat = fig.data[1]
        np.testing.assert_array_equal(np.asarray(heat.z), np.asarray(alone.z))
        assert (heat.zmin, heat.zmax) == (alone.zmin, alone.zmax) and heat.colorbar.orientation == "h"
    own = {(f.data[1].zmin, f.data[1].zmax) for f in figs}
    shared = {(f.data[1].zmin, f.data[1].zmax) for f in probe_views(columns, probes, 2, MapDisplay(shared_scale=True))}
    assert len(own) == 3 and len(shared) == 1
    assert [t.type for f in probe_views(columns[:1], probes, 2, MapDisplay(view="masked")) for t in f.data] == ["image"]
