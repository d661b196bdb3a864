"""The Streamlit app through ``app.py`` (AppTest): first run on the embedded default zoo, every page,
λ changes, uploads that fail (and the session going on), ground truth, and added models.

Runs with 8 probes (set through session state) and a temporary ``DEPARA_CACHE_DIR`` shared by the
module, so the default zoo is computed once and later runs read the disk cache.
"""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGES = ["pages/1_setup.py", "pages/2_attribution_maps.py", "pages/3_edges.py", "pages/4_task_transferability.py", "pages/5_layer_selection.py", "pages/6_present.py"]
PROBES = 8


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("depara-cache")
    mp.setenv("DEPARA_CACHE_DIR", str(root))
    mp.delenv("DEPARA_PROBE_COUNT", raising=False)
    yield root
    mp.undo()


def new_app(**state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=600)
    at.session_state["probe_count"] = PROBES
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def charts(at: AppTest) -> list:
    return at.get("plotly_chart")


def chart_text(at: AppTest) -> str:
    """Every chart's spec as one string (JSON escapes undone)."""
    return " ".join(json.dumps(json.loads(c.proto.spec), ensure_ascii=False) for c in charts(at))


@pytest.fixture
def app() -> AppTest:
    """A new session past its first run (default zoo computed; graphs may come from the module's cache)."""
    return new_app()


def test_first_run_computes_default_zoo_and_shows_matrix_and_tree(app, cache_dir):
    ok(app)
    ss = app.session_state
    assert app.title[0].value == "Task transferability"  # the landing page
    assert len(ss["models"]) >= 2 and ss["probe_count"] == PROBES
    assert [s.label for s in app.status if s.label.startswith("Computed")]  # the progress box
    text = chart_text(app)
    assert "task tree" in text and "rows: source, columns: target" in text and "best sources for" in text
    assert list(cache_dir.glob("graphs/*/*.npz")) and list(cache_dir.glob("terms/*/*.npz"))
    assert any(d.label == "Export report" for d in app.get("download_button"))


def test_a_start_keeps_its_results_for_the_next_session_and_a_bad_copy_is_ignored(app, cache_dir):
    """The first session's results are kept under its start address; the next new session on that
    address draws them before the engine loads and clears them once its own are drawn."""
    from depara_core.session.snapshot import load_snapshot, start_key
    from depara_core.session.workspace import terms_digest

    ok(app)
    kept = load_snapshot(cache_dir, app.session_state["start_key"])
    ws = [w for w in app.session_state["workspaces"].values() if w.complete][-1]
    assert kept is not None and kept.digest == terms_digest(ws.terms) and kept.terms.names == ws.terms.names
    np.testing.assert_array_equal(kept.terms.s_E, ws.terms.s_E)
    assert app.session_state["start_key"] == start_key({}) and "start_preview" not in app.session_state
    again = new_app()  # draws the kept results first; what it ends with are its own
    ok(again)
    assert again.title[0].value == "Task transferability" and len(again.title) == 1 and "start_preview" not in again.session_state
    assert not [i for i in again.info if "last results of this start page" in i.value]
    for path in (cache_dir / "start").rglob("*.npz"):
        path.write_bytes(b"not an npz file")
    broken = new_app()
    ok(broken)
    assert "rows: source, columns: target" in chart_text(broken)


def _preview_only() -> None:
    from pages import _start

    _start.show_last_results("Task transferability", True)


def test_the_kept_results_are_drawn_before_the_engine_is_imported(app, cache_dir):
    """The preview alone (as app.py draws it first): the kept tree and matrix, marked as the last
    results, from modules that do not import torch (checked in a fresh interpreter)."""
    ok(app)
    at = AppTest.from_function(_preview_only, default_timeout=120)
    at.run()
    ok(at)
    assert at.title[0].value == "Task transferability" and "last results of this start page" in at.info[0].value
    assert "rows: source, columns: target" in chart_text(at) and len(charts(at)) == 2  # the tree and the matrix
    import subprocess
    import sys

    probe = "import sys; from pages import _start; import depara_core.session.snapshot; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=Path(APP).parent, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_page_renders(monkeypatch, tmp_path):
    monkeypatch.setenv("DEPARA_CACHE_DIR", str(tmp_path))  # an empty cache: layer scores are not there yet
    app = new_app()
    for page in PAGES:
        app.switch_page(page).run()
        ok(app)
        assert not app.error, (page, [e.value for e in app.error])
        if page.endswith(("2_attribution_maps.py", "3_edges.py", "4_task_transferability.py")):
            assert charts(app), page
    app.switch_page("pages/5_layer_selection.py").run()
    button = [b for b in app.button if b.label.startswith("Score the")]
    assert button, "layer scores need computing in an empty cache"
    button[0].click().run()
    ok(app)
    assert app.metric[0].label == "Recommended layer" and "layers of" in chart_text(app)
    assert any(d.label == "CSV" for d in app.get("download_button"))


def test_lambda_moves_matrix_ranking_and_sidebar(app):
    app.switch_page("pages/4_task_transferability.py").run()
    app.slider(key="lam_slider").set_value(2.5).run()
    ok(app)
    assert app.session_state["lam"] == 2.5 and "2.5" in chart_text(app)
    app.number_input(key="lam_number").set_value(0.25).run()
    assert app.session_state["lam"] == 0.25 and app.slider(key="lam_slider").value == 0.25
    app.switch_page("pages/1_setup.py").run()
    assert app.number_input(key="lam_sidebar").value == 0.25  # shared across pages
    app.number_input(key="lam_sidebar").set_value(4.0).run()
    app.switch_page("pages/4_task_transferability.py").run()
    ok(app)
    assert app.slider(key="lam_slider").value == 4.0 and "s = s_V + 4·s_E" in chart_text(app)


def test_paper_code_conventions_reweight_and_recompute(app):
    """The sidebar's Conventions: the original code's preset brings its λ and node weight, graphs with
    its options (a different cache entry), and the report says which conventions were used."""
    ok(app)
    before = set(app.session_state["workspaces"])
    box = app.selectbox(key="w_preset")
    assert box.value == "paper" and "Paper code" in box.options  # options as shown
    box.set_value("paper code").run()
    ok(app)
    assert app.session_state["lam"] == 0.25
    assert "s = 0.001·s_V" not in chart_text(app)  # the paper's results stay on show until the new graphs are computed
    app.button(key="compute_inline").click().run()
    ok(app)
    assert "s = 0.001·s_V + 0.25·s_E" in chart_text(app)
    config = next(c for c in app.session_state["workspaces"] if c.preset == "paper code")
    ws = app.session_state["workspaces"][config]
    assert ws.complete and ws.terms.node_scale == 1e-3 and config.options().center_edges and config not in before
    assert all(m.spec.preprocess.clip == (0.1, 0.9) for m in ws.models)


def test_pixel_input_space_computes_other_graphs_and_is_for_gradient_x_input_only(app):
    """The sidebar's "Input of Gradient*Input": probe pixels give graphs with another cache entry; the
    choice is disabled (and ignored) for other attribution methods."""
    ok(app)
    before = set(app.session_state["workspaces"])
    radio = app.radio(key="w_input_space")
    assert radio.value == "model" and not radio.disabled
    radio.set_value("pixels").run()
    app.button(key="compute_inline").click().run()
    ok(app)
    config = next(c for c in app.session_state["workspaces"] if c.input_space == "pixels")
    ws = app.session_state["workspaces"][config]
    assert ws.complete and config.options().input_space == "pixels" and config not in before
    assert app.query_params["input"] == "pixels"
    app.selectbox(key="w_method").set_value("saliency").run()
    assert app.radio(key="w_input_space").disabled
    assert any("Probe pixels apply to Gradient*Input only" in c.value for c in app.sidebar.caption), "the ignored choice is said to be ignored"
    from depara_core.session.config import Config

    assert Config("z", (), config.probes, method="saliency", input_space="pixels").options().input_space == "model"


def test_the_task_pages_choices_survive_a_visit_to_another_page(app):
    """Method, colour scale and the λ sweep are shared choices (the link and the Present page use
    them): a page switch must not reset them."""
    app.switch_page("pages/4_task_transferability.py").run()
    app.selectbox(key="w_method_view").set_value("RSA").run()
    app.radio(key="w_matrix_scale").set_value("fixed").run()
    app.switch_page("pages/6_present.py").run()
    ok(app)
    assert "RSA" in app.markdown[0].value and app.query_params.get("method") in ("RSA", ["RSA"])
    app.switch_page("pages/4_task_transferability.py").run()
    ok(app)
    assert app.selectbox(key="w_method_view").value == "RSA" and app.radio(key="w_matrix_scale").value == "fixed"
    app.selectbox(key="w_method_view").set_value("DEPARA").run()
    app.toggle(key="w_lam_in_browser").set_value(True).run()
    app.switch_page("pages/1_setup.py").run()
    assert app.query_params.get("sweep") in ("1", ["1"])
    app.switch_page("pages/4_task_transferability.py").run()
    ok(app)
    assert app.toggle(key="w_lam_in_browser").value and '"frames"' in chart_text(app)


def test_arithmetic_choices_compute_their_own_graphs_close_to_float32(app):
    """The sidebar's precision: bfloat16 gives graphs with other cache entries whose similarities stay
    near float32's; compiling is offered for Gradient*Input only."""
    ok(app)
    exact = next(ws for ws in app.session_state["workspaces"].values() if ws.complete and ws.config.precision == "fp32")
    assert app.radio(key="w_precision").value == "fp32" and not app.toggle(key="w_compile").value
    app.radio(key="w_precision").set_value("bf16").run()
    app.button(key="compute_inline").click().run()
    ok(app)
    config = next(c for c in app.session_state["workspaces"] if c.precision == "bf16")
    ws = app.session_state["workspaces"][config]
    assert ws.complete and config.options().precision == "bf16" and app.query_params["precision"] == "bf16"
    fast, ref = ws.terms, exact.terms
    assert fast.names == ref.names and not np.array_equal(fast.s_V, ref.s_V)  # computed again, in bfloat16
    assert np.abs(fast.s_E - ref.s_E).max() < 0.05 and np.abs(fast.s_V - ref.s_V).max() < 0.05
    app.selectbox(key="w_method").set_value("saliency").run()
    assert app.toggle(key="w_compile").disabled
    from depara_core.session.config import Config

    assert not Config("z", (), config.probes, method="saliency", compile=True).options().compile
    assert Config("z", (), config.probes, compile=True).options().compile


def test_the_address_holds_the_view_and_a_link_reopens_it(app):
    """Choices go into the page's address as they change (λ from the page's fragment too); a new
    session opened with those parameters shows the same view; a hostile link is checked."""
    ok(app)
    app.switch_page("pages/4_task_transferability.py").run()
    app.slider(key="lam_slider").set_value(3.5).run()
    app.selectbox(key="w_method_view").set_value("CKA").run()
    names = app.session_state["models"]
    app.selectbox(key="w_target").set_value(names[2]).run()
    ok(app)
    params = dict(app.query_params)
    assert params["lam"] == "3.5" and params["method"] == "CKA" and params["target"] == names[2] and params["models"] == ",".join(names)
    assert any("lam=3.5" in c.value for c in app.code)  # the "Link to this view" text

    other = AppTest.from_file(APP, default_timeout=600)
    other.session_state["probe_count"] = PROBES  # as the first session (the link carries it too)
    for key, value in params.items():
        other.query_params[key] = value
    other.run()
    ok(other)
    ss = other.session_state
    assert (ss["lam"], ss["method_view"], ss["target"], ss["models"]) == (3.5, "CKA", names[2], names)
    assert other.selectbox(key="w_target").value == names[2] and "CKA" in chart_text(other)
    assert not [w for w in other.warning if "link" in str(w.value)]

    hostile = AppTest.from_file(APP, default_timeout=600)
    hostile.session_state["probe_count"] = PROBES
    for key, value in {"probes": "/etc/passwd", "lam": "nan", "attribution": "os:system"}.items():
        hostile.query_params[key] = value
    hostile.run()
    ok(hostile)
    assert hostile.session_state["lam"] == 1.0 and hostile.session_state["probe_set"].startswith("builtin:")
    warning = " ".join(str(w.value) for w in hostile.warning)
    assert "probes='/etc/passwd' was left out" in warning and "lam='nan'" in warning and "attribution='os:system'" in warning


def test_a_link_reproduces_the_attribution_maps_shown(app):
    """Models, probes and how the maps are drawn go into the address; a second session opened with
    it shows the same grid."""
    names = list(next(iter(app.session_state["workspaces"].values())).names)
    app.switch_page("pages/2_attribution_maps.py").run()
    probes = app.multiselect(key="w_attr_probes").value[1:4]
    app.multiselect(key="w_attr_models").set_value([names[3], names[0]]).run()
    app.multiselect(key="w_attr_probes").set_value(probes).run()
    app.radio(key="w_attr_view").set_value("map").run()
    app.slider(key="w_attr_smooth").set_value(1.0).run()
    ok(app)
    params = dict(app.query_params)
    assert params["maps"] == f"{names[3]},{names[0]}" and params["map_probes"] == ",".join(probes)
    assert (params["map_view"], params["map_smoothing"]) == ("map", "1") and "map_opacity" not in params  # defaults stay out

    other = AppTest.from_file(APP, default_timeout=600)
    other.session_state["probe_count"] = PROBES
    for key, value in params.items():
        other.query_params[key] = value
    other.run()
    other.switch_page("pages/2_attribution_maps.py").run()
    ok(other)
    assert other.multiselect(key="w_attr_models").value == [names[3], names[0]] and other.multiselect(key="w_attr_probes").value == probes
    assert other.radio(key="w_attr_view").value == "map" and other.slider(key="w_attr_smooth").value == 1.0
    grid = json.loads(charts(other)[0].proto.spec)
    assert grid["layout"]["xaxis"]["ticktext"] == [names[3], names[0]] and grid["layout"]["yaxis"]["ticktext"] == probes


def test_export_bundle_and_reopening_its_settings(app):
    """The sidebar's bundle holds the view; the Setup page reopens it in another session, and a
    file that is not a bundle gets a message."""
    ok(app)
    app.switch_page("pages/4_task_transferability.py").run()
    app.slider(key="lam_slider").set_value(2.0).run()
    app.selectbox(key="w_method_view").set_value("RSA").run()
    bundle = next(d for d in app.get("download_button") if d.label == "Export bundle")
    assert bundle.proto.label == "Export bundle"
    from depara_core.session.bundle import build_bundle

    ss = app.session_state
    ws = next(w for w in ss["workspaces"].values() if w.complete)
    z = zipfile.ZipFile(io.BytesIO(build_bundle(ws, ss["lam"], link=dict(app.query_params), static=False)))
    settings = z.read("settings.json")

    other = new_app()
    other.switch_page("pages/1_setup.py").run()
    other.file_uploader(key="reopen_file").set_value([("settings.json", settings, "application/json")]).run()
    other.button(key="reopen").click().run()
    ok(other)
    assert other.session_state["lam"] == 2.0 and other.session_state["method_view"] == "RSA"
    assert any("Reopened the saved view" in s.value for s in other.success)
    other.file_uploader(key="reopen_file").set_value([("x.json", b"{not json", "application/json")]).run()
    other.button(key="reopen").click().run()
    ok(other)
    assert any("not JSON" in str(e.value) for e in other.error) and other.session_state["lam"] == 2.0


def test_presentation_steps_through_the_figures_in_large_type(app):
    app.switch_page("pages/6_present.py").run()
    ok(app)
    assert app.button(key="slide_back").disabled and "task tree" in app.markdown[0].value
    spec = json.loads(charts(app)[0].proto.spec)
    assert spec["layout"]["font"]["size"] == 20
    app.button(key="slide_next").click().run()
    app.button(key="slide_next").click().run()
    ok(app)
    assert "ranking of sources for" in " ".join(m.value for m in app.markdown) and not app.button(key="slide_back").disabled
    app.button(key="slide_next").click().run()
    ok(app)
    spec = json.loads(charts(app)[0].proto.spec)
    assert "λ sweep" in " ".join(m.value for m in app.markdown) and spec["frames"] and spec["layout"]["height"] > 760


def test_the_presentation_shows_the_attribution_maps_chosen_on_their_page(app):
    """A slide of the maps: the Attribution page's defaults before a visit, then its models, probes
    and display choices."""
    names = list(next(iter(app.session_state["workspaces"].values())).names)

    def attribution_slide() -> dict:
        app.session_state["slide"] = 99  # the last slide: past the others
        app.switch_page("pages/6_present.py").run()
        while "attribution maps of" not in app.markdown[0].value:
            app.button(key="slide_back").click().run()
        ok(app)
        return json.loads(charts(app)[0].proto.spec)

    spec = attribution_slide()
    assert "attribution maps of 6 probes" in app.markdown[0].value and spec["layout"]["font"]["size"] == 20
    assert spec["layout"]["xaxis"]["ticktext"] == names[:4]
    app.switch_page("pages/2_attribution_maps.py").run()
    app.multiselect(key="w_attr_models").set_value([names[5], names[1]]).run()
    app.multiselect(key="w_attr_probes").set_value(app.multiselect(key="w_attr_probes").value[:2]).run()
    app.radio(key="w_attr_view").set_value("map").run()
    spec = attribution_slide()
    assert "attribution maps of 2 probes" in app.markdown[0].value and spec["layout"]["xaxis"]["ticktext"] == [names[5], names[1]]
    from depara_core.viz.display import MapDisplay
    from depara_core.viz.views import attribution_grid_view

    ws = next(iter(app.session_state["workspaces"].values()))
    rows = [ws.probes.ids.index(p) for p in app.session_state["attr_probes"]]
    expected = attribution_grid_view([(m, ws.graph(m), ws.model(m).spec.preprocess) for m in (names[5], names[1])], ws.probes, rows, MapDisplay(view="map"))
    assert spec["data"][0]["source"] == expected.data[0].source  # map only, as chosen: no photo under it


def test_an_untrained_control_joins_the_comparison():
    at = new_app(models=["depth", "normals", "albedo"])
    at.switch_page("pages/1_setup.py").run()
    at.multiselect(key="w_controls").set_value(["depth"]).run()
    ok(at)
    at.button(key="compute_setup").click().run()
    ok(at)
    config = next(c for c in at.session_state["workspaces"] if c.controls == ("depth",))
    ws = at.session_state["workspaces"][config]
    assert ws.complete and ws.names == ("depth", "normals", "albedo", "depth@untrained")
    assert ws.model("depth@untrained").digest != ws.model("depth").digest
    at.switch_page("pages/4_task_transferability.py").run()
    ok(at)
    assert "depth@untrained" in chart_text(at) and "controls=depth" in "&".join(f"{k}={v}" for k, v in at.query_params.items())


def test_stability_badge_follows_the_method(app):
    app.switch_page("pages/4_task_transferability.py").run()
    ok(app)
    badge = [m for m in app.metric if m.label.startswith("Ranking stability, DEPARA (two halves of 8 probes)")]
    assert badge and badge[0].value.startswith("ρ ")
    app.selectbox(key="w_method_view").set_value("RSA").run()
    assert any(m.label.startswith("Ranking stability, RSA") for m in app.metric)
    app.selectbox(key="w_method_view").set_value("PL-LogME").run()
    assert any(m.label.startswith("Ranking stability, PL-LogME") for m in app.metric)


def test_attribution_display_choices_redraw_without_recomputing(app):
    app.switch_page("pages/2_attribution_maps.py").run()
    before = {k: dict(v) for k, v in app.session_state["workspaces"][next(iter(app.session_state["workspaces"]))].graphs.items()}
    assert app.slider(key="w_attr_opacity").disabled is False
    app.radio(key="w_attr_view").set_value("masked").run()
    app.toggle(key="w_attr_shared").set_value(True).run()
    app.slider(key="w_attr_smooth").set_value(1.5).run()
    ok(app)
    assert app.slider(key="w_attr_opacity").disabled is True  # opacity means something only over the photo
    spec = chart_text(app)
    assert '"type": "image"' in spec and "attributions" not in [e.value for e in app.error]
    after = app.session_state["workspaces"][next(iter(app.session_state["workspaces"]))].graphs
    assert all(after[m][layer] is g for m, layers in before.items() for layer, g in layers.items())  # the graphs are untouched
    app.switch_page("pages/6_present.py").run()  # the choices survive a visit to another page, and the exports use them
    app.switch_page("pages/2_attribution_maps.py").run()
    ok(app)
    assert app.radio(key="w_attr_view").value == "masked" and app.toggle(key="w_attr_shared").value and app.slider(key="w_attr_smooth").value == 1.5
    assert app.slider(key="w_attr_opacity").disabled is True
    ss = app.session_state
    assert (ss["attr_view"], ss["attr_shared"], ss["attr_smooth"], ss["attr_signed"]) == ("masked", True, 1.5, True)


def test_smoothgrad_maps_are_one_click_away_with_their_cost_and_leave_the_graphs_alone(app):
    app.switch_page("pages/2_attribution_maps.py").run()
    ws = next(iter(app.session_state["workspaces"].values()))
    terms = ws.terms
    two = list(ws.names[:2])
    app.multiselect(key="w_attr_models").set_value(two).run()
    app.segmented_control(key="w_attr_method").set_value("smoothgrad").run()
    ok(app)
    offer = [str(i.value) for i in app.info if "SmoothGrad maps of 2 model(s)" in str(i.value)]
    assert offer and "8 forward and backward passes per probe (8x those of Gradient*Input)" in offer[0] and "about" in offer[0]
    assert not [c for c in app.caption if str(c.value).startswith("Showing SmoothGrad maps")]  # nothing shown as SmoothGrad yet
    app.button(key="compute_maps_smoothgrad").click().run()
    ok(app)
    assert [c for c in app.caption if str(c.value).startswith("Showing SmoothGrad maps")]
    spaces = app.session_state["workspaces"]
    smooth = next(w for c, w in spaces.items() if c.method == "smoothgrad")
    assert set(smooth.graphs) == set(two) and all(smooth.graph(m).options.method == "smoothgrad" for m in two)
    assert not np.allclose(smooth.graph(two[0]).nodes.astype(np.float32), ws.graph(two[0]).nodes.astype(np.float32), atol=1e-3)
    assert ws.terms is terms and app.session_state["method"] == "gradient_x_input"  # the similarities keep the sidebar's method
    app.segmented_control(key="w_attr_method").set_value("gradient_x_input").run()
    assert not [c for c in app.caption if str(c.value).startswith("Showing SmoothGrad maps")]
    app.segmented_control(key="w_attr_method").set_value("smoothgrad").run()  # computed once: shown at once, no offer
    assert [c for c in app.caption if str(c.value).startswith("Showing SmoothGrad maps")] and not [i for i in app.info if "SmoothGrad maps of" in str(i.value)]


def test_attribution_page_shows_the_chance_level_of_s_v(app):
    app.switch_page("pages/2_attribution_maps.py").run()
    ok(app)
    labels = [m.label for m in app.metric]
    assert any(lbl.startswith("s_V(") for lbl in labels) and "Chance level (mismatched probes, 95%)" in labels
    assert "node cosines: same probe vs mismatched" in chart_text(app)
    a, b = app.session_state["node_a"], app.session_state["node_b"]
    app.selectbox(key="w_node_b").set_value(a).run()  # a model with itself: far above chance, no warning
    ok(app)
    assert not [w for w in app.warning if "chance level" in str(w.value)]
    assert b != a


def test_the_models_compared_survive_page_switches_and_stale_choices_fall_back(app):
    """Models, layers and probes chosen on Edges and Attribution maps are kept across pages; a kept
    choice that is no longer offered (e.g. from another zoo) falls back to the page's default."""
    names = list(next(iter(app.session_state["workspaces"].values())).names)
    app.switch_page("pages/3_edges.py").run()
    app.selectbox(key="w_edge_a").set_value(names[3]).run()
    app.multiselect(key="w_edge_models").set_value([names[5]]).run()
    app.switch_page("pages/2_attribution_maps.py").run()
    app.multiselect(key="w_attr_models").set_value([names[2]]).run()
    app.switch_page("pages/4_task_transferability.py").run()
    app.switch_page("pages/3_edges.py").run()
    ok(app)
    assert app.selectbox(key="w_edge_a").value == names[3] and app.multiselect(key="w_edge_models").value == [names[5]]
    assert f"s_E({names[3]}, {names[1]})" in [m.label for m in app.metric]
    app.session_state["edge_b"] = "not-a-model"
    app.session_state["edge_models"] = ["gone", names[4]]
    app.run()
    ok(app)
    assert app.selectbox(key="w_edge_b").value == names[1] and app.multiselect(key="w_edge_models").value == [names[4]]
    app.session_state["attr_models"] = ["gone"]  # nothing of it offered: the default
    app.switch_page("pages/2_attribution_maps.py").run()
    ok(app)
    assert app.multiselect(key="w_attr_models").value == names[:4]


def test_baseline_methods_disable_lambda_and_redraw_matrix_and_ranking(app):
    app.switch_page("pages/4_task_transferability.py").run()
    box = app.selectbox(key="w_method_view")
    assert {"DDS", "PL-LogME", "debiased CKA", "DEPARA centred"} <= set(box.options)
    box.set_value("PL-LogME").run()
    ok(app)
    assert app.slider(key="lam_slider").disabled and "PL-LogME" in chart_text(app)
    app.radio(key="w_matrix_scale").set_value("fixed").run()
    ok(app)
    assert "no fixed range" in chart_text(app)  # LogME is an evidence, not a bounded similarity
    app.selectbox(key="w_method_view").set_value("DEPARA centred").run()
    ok(app)
    assert not app.slider(key="lam_slider").disabled and "centred edges" in chart_text(app)


def test_lambda_in_the_browser_sends_every_frame_once_and_follows_target_and_method(app):
    app.switch_page("pages/4_task_transferability.py").run()
    app.slider(key="lam_slider").set_value(1.5).run()
    app.toggle(key="w_lam_in_browser").set_value(True).run()
    ok(app)
    (sweep,) = [json.loads(c.proto.spec) for c in charts(app) if "frames" in json.loads(c.proto.spec)]
    names = [f["name"] for f in sweep["frames"]]
    assert "1.5" in names and sweep["layout"]["sliders"][0]["active"] == names.index("1.5")
    target = app.session_state["target"]
    assert f"best sources for {target}" in sweep["layout"]["title"]["text"] and "s = s_V + 1.5·s_E" in sweep["layout"]["title"]["text"]
    assert app.radio(key="w_matrix_scale").disabled and "page's λ (now 1.5) follows it" in " ".join(c.value for c in app.caption)
    assert app.query_params.get("sweep") in ("1", ["1"])  # a link reopens the sweep
    # the figure's slider came to rest on λ = 0.5 (what the browser's listener reports): the page and
    # the link follow; a full run (here; in the browser only the fragment reruns, which sends the
    # figure unchanged: the browser test) draws the figure at the page's λ
    app.session_state["sweep_shown"] = app.session_state["lam"] = 0.5
    app.run()
    ok(app)
    (synced,) = [json.loads(c.proto.spec) for c in charts(app) if "frames" in json.loads(c.proto.spec)]
    assert synced["frames"] == sweep["frames"] and synced["layout"]["sliders"][0]["active"] == names.index("0.5")
    assert app.number_input(key="lam_number").value == 0.5 and app.query_params.get("lam") in ("0.5", ["0.5"])
    app.slider(key="lam_slider").set_value(2.0).run()  # the page's own slider: the figure is drawn at its λ
    (moved,) = [json.loads(c.proto.spec) for c in charts(app) if "frames" in json.loads(c.proto.spec)]
    assert moved["layout"]["sliders"][0]["active"] == [f["name"] for f in moved["frames"]].index("2")
    other = [n for n in app.selectbox(key="w_target").options if n != target][0]
    app.selectbox(key="w_target").set_value(other).run()
    ok(app)
    assert f"best sources for {other}" in chart_text(app) and app.session_state["target"] == other
    app.selectbox(key="w_method_view").set_value("RSA").run()
    ok(app)
    assert app.toggle(key="w_lam_in_browser").disabled and '"frames"' not in chart_text(app)  # RSA: the usual views
    assert "task tree" in chart_text(app)


def _png(color: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (color, 120, 255 - color)).save(buf, format="PNG")
    return buf.getvalue()


def test_failing_uploads_show_a_message_and_keep_the_session(app):
    app.switch_page("pages/1_setup.py").run()
    before = app.session_state["probe_set"]
    app.file_uploader(key="probe_files").set_value([("a.png", _png(10), "image/png"), ("b.png", b"not an image", "image/png")]).run()
    app.button(key="use_uploads").click().run()
    ok(app)
    assert any("not a readable image" in e.value for e in app.error)
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.png", _png(0))
    app.file_uploader(key="probe_files").set_value([("evil.zip", evil.getvalue(), "application/zip")]).run()
    app.button(key="use_uploads").click().run()
    assert any("outside the archive" in e.value for e in app.error)
    app.text_input(key="probe_path").set_value("/etc").run()
    app.button(key="use_folder").click().run()
    assert any("does not read folders or files named on the web page" in e.value for e in app.error)
    assert app.session_state["probe_set"] == before
    app.switch_page("pages/4_task_transferability.py").run()  # nothing computed is lost
    ok(app)
    assert charts(app) and not app.error


def test_good_upload_is_used_after_compute():
    at = new_app()
    at.switch_page("pages/1_setup.py").run()
    at.file_uploader(key="probe_files").set_value([(f"p{i}.png", _png(i * 50), "image/png") for i in range(4)]).run()
    at.number_input(key="probe_size").set_value(64).run()
    at.button(key="use_uploads").click().run()
    ok(at)
    assert at.session_state["probe_set"].startswith("uploaded:") and at.session_state["probe_count"] == 4
    assert any("Using 4 probe images" in s.value for s in at.success)
    at.button(key="compute_setup").click().run()
    ok(at)
    assert any("Done" in s.value for s in at.success)
    at.switch_page("pages/2_attribution_maps.py").run()
    ok(at)
    assert "p0.png" in chart_text(at)


def test_bad_model_is_reported_and_models_unchanged(app):
    app.switch_page("pages/1_setup.py").run()
    models = list(app.session_state["models"])
    app.radio(key="add_kind").set_value("torchvision").run()
    app.text_input(key="add_name").set_value("mine")
    app.text_input(key="add_arch").set_value("resnet18")
    app.text_input(key="add_ckpt_path").set_value("/no/such/weights.pth")
    app.button[[b.label for b in app.button].index("Add model")].click().run()
    ok(app)
    assert any("does not read folders or files named on the web page" in e.value for e in app.error)
    assert list(app.session_state["models"]) == models


def test_added_callable_model_joins_the_sidebar(monkeypatch):
    monkeypatch.setenv("DEPARA_ALLOW_CODE", "1")  # the operator's opt-in
    import streamlit as st

    st.cache_resource.clear()  # the policy is read once per process
    app = new_app()
    app.switch_page("pages/1_setup.py").run()
    app.radio(key="add_kind").set_value("callable").run()
    app.text_input(key="add_name").set_value("identity")
    app.text_input(key="add_callable").set_value("torch.nn:Identity")
    app.button[[b.label for b in app.button].index("Add model")].click().run()
    ok(app)
    assert "identity" in app.session_state["models"] and any("Added 'identity'" in s.value for s in app.success)
    app.button(key="remove_identity").click().run()
    assert "identity" not in app.session_state["models"]
    monkeypatch.delenv("DEPARA_ALLOW_CODE")
    st.cache_resource.clear()


def test_ground_truth_upload_scores_methods(app):
    app.switch_page("pages/4_task_transferability.py").run()
    names = list(app.session_state["models"])
    rows = ["source,target,affinity"] + [f"{s},{t},{np.cos(i + 3 * j):.4f}" for i, s in enumerate(names) for j, t in enumerate(names) if s != t]
    app.file_uploader(key="gt_file").set_value(("gt.csv", "\n".join(rows).encode(), "text/csv")).run()
    app.run()
    ok(app)
    frames = [d.value for d in app.dataframe]
    methods = [f for f in frames if "method" in f.columns]
    assert methods and {"DEPARA-V", "DEPARA-E", "RSA", "CKA", "debiased CKA", "DDS", "PL-LogME", "random", "oracle"} <= set(methods[0]["method"])
    assert {"DEPARA centred (λ=1)"} <= set(methods[0]["method"])
    assert methods[0]["method"].is_unique and methods[0]["method"].iloc[0].startswith("DEPARA (λ=")
    assert any("leave-one-target-out" in i.value for i in app.info)
    n = len(names) - 1  # the protocol, as the CLI writes it
    assert any(c.value.startswith("Measured as targets: ") for c in app.caption)
    assert any(f"candidates: the other {n} compared models with measured transfer" in c.value and "(the CLI's evaluate counts the same way)" in c.value for c in app.caption)
    use = [b for b in app.button if b.label.startswith("Use λ")]
    use[0].click().run()
    ok(app)
    app.file_uploader(key="gt_file").set_value(("bad.csv", b"a,b\n1,2\n", "text/csv")).run()
    assert any("lacks column" in e.value for e in app.error)
    app.file_uploader(key="gt_file").set_value(None).run()


def test_changed_choices_offer_compute_and_keep_last_results(app):
    app.switch_page("pages/3_edges.py").run()
    app.radio(key="w_layer_mode").set_value("all").run()
    ok(app)
    assert any("still need computing" in i.value for i in app.info)
    assert any("last complete results" in w.value for w in app.warning) and charts(app)
    assert any(b.label == "Compute" for b in app.button)
    app.radio(key="w_layer_mode").set_value("encoder").run()
    ok(app)
    assert not app.warning and charts(app)


def test_all_layers_of_a_small_zoo():
    """A registered zoo of tiny networks in 'all layers' mode: layer columns, edges per layer, layer scores."""
    import streamlit as st

    from depara_core import zoos
    from depara_core.zoos import register_zoo

    register_zoo("tiny-test", "conftest:tiny_zoo", "four tiny random networks (tests)")
    st.cache_resource.clear()  # the zoo list is cached per process
    try:
        _small_zoo_pages()
    finally:
        zoos.ZOOS.unregister("tiny-test")  # leave the registry as other tests expect it
        st.cache_resource.clear()


def _small_zoo_pages() -> None:
    names = [f"tiny{i}" for i in range(4)]
    at = new_app(zoo="tiny-test", models=names, layer_mode="all", probe_set="builtin:noise", probe_count=6)
    ok(at)
    assert "task tree" in chart_text(at)
    at.switch_page("pages/2_attribution_maps.py").run()
    at.radio(key="w_attr_by").set_value("layers").run()
    ok(at)
    assert "CONV1" in chart_text(at) or "ACT2" in chart_text(at)
    at.switch_page("pages/3_edges.py").run()
    at.selectbox(key="w_edge_layer_a").set_value("conv2").run()
    ok(at)
    assert "tiny0 / conv2" in chart_text(at)
    at.switch_page("pages/5_layer_selection.py").run()  # every layer is cached: scored at once
    ok(at)
    assert at.metric[0].label == "Recommended layer" and not [b for b in at.button if b.label.startswith("Score the")]
    at.multiselect(key="w_layer_targets").set_value(["tiny1", "tiny3"]).run()  # several targets: one chart, one row each
    ok(at)
    assert "layers of tiny0 vs 2 targets" in chart_text(at)
    recommendations = next(df for df in (d.value for d in at.dataframe) if "recommended layer" in df.columns)
    ws = next(iter(at.session_state["workspaces"].values()))
    assert list(recommendations["target"]) == ["tiny1", "tiny3"]
    assert list(recommendations["recommended layer"]) == [ws.layer_label("tiny0", ws.layer_results[("tiny0", t)].best(1.0)).split(":")[0] for t in ("tiny1", "tiny3")]
    assert "layer_target=tiny1,tiny3" in "&".join(f"{k}={v}" for k, v in at.query_params.items())  # the link holds both
    # ranked by a baseline scored from the same graphs: its argmax, in the table and the link
    box = at.selectbox(key="w_layer_method")
    assert box.value == "DEPARA" and {"CKA", "PL-LogME", "RSA"} <= set(box.options)
    box.set_value("CKA").run()
    ok(at)
    recommendations = next(df for df in (d.value for d in at.dataframe) if "recommended layer" in df.columns)
    from depara_core.compare.pairwise import cka_similarity
    from depara_core.engine.run import compute_graphs

    model = ws.model("tiny0")
    layers = list(ws.layer_results[("tiny0", "tiny1")].layers)
    graphs = compute_graphs(model, ws.probes, layers, ws.config.options(), cache=ws.cache)
    target = compute_graphs(ws.model("tiny1"), ws.probes, [ws.encoder("tiny1")], ws.config.options(), cache=ws.cache)[ws.encoder("tiny1")]
    by_cka = max(layers, key=lambda layer: cka_similarity(graphs[layer], target))  # independent of the layer scores
    assert recommendations["recommended layer"].iloc[0] == ws.layer_label("tiny0", by_cka).split(":")[0] and "CKA" in recommendations.columns
    assert at.query_params["layer_method"] == "CKA"


def test_two_sessions_never_see_each_others_uploads():
    alice = new_app()
    alice.switch_page("pages/1_setup.py").run()
    alice.file_uploader(key="probe_files").set_value([(f"secret{i}.png", _png(i * 60 + 5), "image/png") for i in range(4)]).run()
    alice.number_input(key="probe_size").set_value(32).run()
    alice.button(key="use_uploads").click().run()
    ok(alice)
    assert not alice.error, [e.value for e in alice.error]
    assert alice.session_state["probe_set"].startswith("uploaded:")
    bob = new_app()
    bob.switch_page("pages/1_setup.py").run()
    ok(bob)
    options = [str(o) for o in bob.selectbox(key="w_probe_set").options]
    assert not any("secret" in o or "uploaded" in o for o in options), options
    assert not bob.session_state["uploaded_probes"]
    # the same file name and length, other content: each session scores with its own table
    names = list(alice.session_state["models"])
    for at, sign in ((alice, 1), (bob, -1)):
        rows = ["source,target,affinity"] + [f"{s},{t},{sign * np.cos(i + 3 * j):+.4f}" for i, s in enumerate(names) for j, t in enumerate(names) if s != t]
        at.switch_page("pages/4_task_transferability.py").run()
        at.file_uploader(key="gt_file").set_value(("gt.csv", "\n".join(rows).encode(), "text/csv")).run()
        ok(at)
    a_aff, b_aff = (at.session_state["gt_upload"].affinity.to_numpy() for at in (alice, bob))
    assert np.allclose(a_aff, -b_aff, equal_nan=True) and not np.allclose(a_aff, b_aff, equal_nan=True)


def test_memory_budget_field_reaches_the_engine_and_bad_sizes_are_explained(monkeypatch, tmp_path):
    monkeypatch.setenv("DEPARA_CACHE_DIR", str(tmp_path))  # nothing cached: the engine runs under the budget
    models = ["depth", "normals", "albedo"]
    at = new_app(zoo="mini-taskonomy", models=models, memory_budget="lots", probe_set="builtin:scenes")
    ok(at)
    assert any("is not a size such as 512MiB" in e.value for e in at.sidebar.error)
    assert [ws.memory_budget for ws in at.session_state["workspaces"].values()] == [None]  # automatic meanwhile
    at.text_input(key="w_memory_budget").set_value("64MiB").run()
    at.number_input(key="w_probe_count").set_value(PROBES + 1).run()  # new probes: something to compute
    if any(b.key == "compute_inline" for b in at.button):
        at.button(key="compute_inline").click().run()
    ok(at)
    assert not at.sidebar.error
    assert [ws.memory_budget for ws in at.session_state["workspaces"].values()][-1] == 64 * 2**20


class HeldJobs:
    """Once :meth:`hold` is called, jobs started after it wait at their second progress report (some
    batches done) until :meth:`release`: a page's run then times out while its job is surely still
    computing, however fast the machine is."""

    def __init__(self) -> None:
        self.since: float | None = None
        self._released = threading.Event()

    def hold(self) -> None:
        self.since = time.monotonic()

    def release(self) -> None:
        self._released.set()

    def wait_if_held(self, job, reports: int) -> None:
        if self.since is not None and job.started >= self.since and reports == 2:
            self._released.wait(120)


@pytest.fixture
def held_jobs(monkeypatch):
    from depara_core.session.jobs import Job

    held, sink = HeldJobs(), Job._sink

    def held_sink(self, report):
        self._reports = getattr(self, "_reports", 0) + 1
        held.wait_if_held(self, self._reports)
        return sink(self, report)

    monkeypatch.setattr(Job, "_sink", held_sink)
    yield held
    held.release()


def _leave_while_computing(at: AppTest, probes: int) -> object:
    """Ask for ``probes`` probes, press Compute and leave the page after a moment (as a person switching
    pages does: Streamlit stops the page's script); the session's job is returned, still running (held
    by :class:`HeldJobs` until the test lets it go on)."""
    at.number_input(key="w_probe_count").set_value(probes).run()
    assert any("still need computing" in i.value for i in at.info)
    compute = at.button(key="compute_inline")
    with pytest.raises(RuntimeError, match="timed out"):
        compute.click().run(timeout=0.75)
    compute._value = False  # AppTest keeps the click of a run it timed out; a browser sends it once
    job = at.session_state["job"]
    assert job.running, "the computation must go on after its page stopped"
    return job


def background_notes(at: AppTest) -> list[str]:
    """The sidebar's notes about a computation running in the background."""
    return [c.value for c in at.sidebar.caption if "in the background" in c.value]


def test_a_computation_survives_a_page_switch_and_the_next_page_follows_it(held_jobs):
    at = new_app()
    held_jobs.hold()
    job = _leave_while_computing(at, 48)
    held_jobs.release()
    at.switch_page("pages/2_attribution_maps.py").run()
    ok(at)
    assert job.state == "done" and at.session_state["job"] is None
    assert not background_notes(at), "the sidebar's note went with the computation it was about"
    assert any(s.proto.label == "Computed attribution graphs" for s in at.get("status")), "the new page follows the same job"
    assert at.get("imgs") or charts(at), "and then draws its results"
    assert "still need computing" not in " ".join(i.value for i in at.info)


def test_stop_says_where_and_compute_resumes_there(cache_dir, held_jobs):
    at = new_app()
    held_jobs.hold()
    job = _leave_while_computing(at, 56)
    job.stop()  # what the Stop button's callback does
    held_jobs.release()
    at.run()
    ok(at)
    assert job.state == "stopped"
    assert not background_notes(at), "no note of a computation (stopping) that has stopped"
    stopped = [i.value for i in at.info if "still need computing" in i.value]
    assert stopped and stopped[0].startswith(("Stopped while computing", "Stopped before")), stopped
    if stopped[0].startswith("Stopped while"):  # the unfinished layer's batches are kept to resume from
        assert list((cache_dir / "partial").rglob("*.npz"))
    at.button(key="compute_inline").click().run()
    ok(at)
    assert at.session_state["job"] is None and charts(at)
    assert not list((cache_dir / "partial").rglob("*.npz")), "a finished layer's checkpoint is removed"
