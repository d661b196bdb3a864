"""The exported HTML report: self-contained, with every figure and table of the workspace."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import random_probes, tiny_spec

from depara_core.errors import DeparaError
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.evaluation.layers import LayerTruth
from depara_core.models.spec import load_model
from depara_core.session.config import Config, ProbeChoice
from depara_core.session.report import assemble, build_report, static_export_available, write_report
from depara_core.session.workspace import Workspace

NAMES = ("m0", "m1", "m2", "m3")


@pytest.fixture(scope="module")
def ws():
    models = [load_model(tiny_spec(n, seed=i)) for i, n in enumerate(NAMES)]
    w = Workspace(Config("tiny", NAMES, ProbeChoice("builtin", "rand", 7)), models, random_probes())
    w.compute()
    w.compute_layer_scores("m0", "m1")
    return w


def test_report_holds_every_figure_and_table(ws):
    gt = GroundTruth.from_matrix(NAMES, np.random.default_rng(0).random((4, 4)), name="measured")
    truth = LayerTruth.from_csv(b"source,target,layer,value\nm0,m1,conv1,1\nm0,m1,act2,2\nm0,m1,fc,3\n")
    rep = assemble(ws, 0.5, target="m2", ground_truth=gt, layer_truth=truth, relevant=2)
    names = [n for n, _ in rep.figures]
    for expected in ("task tree", "similarity matrix", "λ sweep (the figure's slider moves λ)", "ranking of sources for m2", "precision–recall", "precision and recall at K", "layers of m0 for m1"):
        assert expected in names
    assert sum(n.startswith("edges of") for n in names) == 4 and any(n.startswith("attribution maps") for n in names)
    tables = [n for n, k, _ in rep.items if k == "table"]
    assert {"methods", "P@K and R@K", "layers of m0 for m1", "probe images"} <= set(tables)
    html = rep.html(png=False)
    assert html.count("<div class='fig'>") == len(names)
    assert html.count(">CSV</a>") == len(tables)  # a CSV link per table
    assert html.count("Plotly.newPlot") >= len(names)
    sweep = dict(rep.figures)["λ sweep (the figure's slider moves λ)"]
    assert len(sweep.frames) > 20 and sweep.layout.sliders[0].steps[sweep.layout.sliders[0].active].label == "0.5"
    assert "Plotly.addFrames" in html and "Plotly.animate(" not in html  # the frames travel; nothing plays on opening


def test_report_is_self_contained(ws, tmp_path):
    html = build_report(ws, 1.0, png=False)
    assert not re.search(r"<script[^>]+src=", html), "no external scripts"
    assert html.count("* plotly.js v") == 1  # the library is inlined once
    assert ("s = s_V + 1\\u00b7s_E" in html or "s = s_V + 1·s_E" in html) and "ranking of sources for m3" in html  # no target: every target
    path = write_report(tmp_path / "r.html", ws, 1.0, png=False)
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_without_results_says_what_to_do(ws):
    empty = Workspace(ws.config, ws.models, ws.probes)
    with pytest.raises(DeparaError, match="compute before exporting"):
        build_report(empty, 1.0)


def test_bad_ground_truth_is_noted_not_fatal(ws):
    gt = GroundTruth.from_matrix(["x", "y", "z"], np.ones((3, 3)))
    html = build_report(ws, 1.0, ground_truth=gt, png=False)
    assert "covers none of the chosen models" in html


@pytest.mark.slow
def test_png_copies_when_chromium_is_installed(ws):
    if not static_export_available():
        pytest.skip("static export needs kaleido and Chrome/Chromium")
    rep = assemble(ws, 1.0, target="m0")
    rep.items = [item for item in rep.items if item[0] in ("task tree", "similarity matrix") or item[1] == "section"][:4]
    html = rep.html(png=True)
    assert html.count("<img class='png'") == 2, html[html.find("PNG copies"):][:400]


def test_a_failed_png_export_is_said_in_the_report(ws, monkeypatch):
    import depara_core.session.report as report

    def fail(*_a, **_k):
        raise RuntimeError("the browser did not start")

    monkeypatch.setattr(report.pio, "write_images", fail)
    rep = assemble(ws, 1.0, target="m0")
    html = rep.html(png=True)
    assert "<img class='png'" not in html and "PNG copies</b>: not drawn: static export failed (RuntimeError: the browser did not start)" in html


def test_attribution_maps_are_drawn_as_the_display_choices_say(ws):
    """The app passes its page's display choices: the report draws the maps that way and says so."""
    from depara_core.viz.display import MapDisplay
    from depara_core.viz.views import attribution_grid_view

    shown = MapDisplay(view="masked", signed=False, smoothing=1.0, shared_scale=True)
    default, chosen = assemble(ws, 1.0), assemble(ws, 1.0, display=shown)
    title = next(n for n, _ in chosen.figures if n.startswith("attribution maps"))
    cols = [(n, ws.graph(n), ws.model(n).spec.preprocess) for n in NAMES]
    expected = attribution_grid_view(cols, ws.probes, list(range(6)), shown)
    assert dict(chosen.figures)[title].to_plotly_json() == expected.to_plotly_json()
    assert dict(default.figures)[title].to_plotly_json() != expected.to_plotly_json()
    texts = [body for _, kind, body in chosen.items if kind == "text"]
    assert f"Shown as: {shown.describe()} (display only: the graphs are as computed)." in texts
    assert "photo masked by |map|, absolute values" in shown.describe() and "smoothed by 1 px" in shown.describe()
