"""DEPARA Explorer: which pre-trained network, and which of its layers, will transfer best to a task,
judged from unlabelled probe images (deep attribution graphs, CVPR 2020).

Run with ``streamlit run app.py``. This file defines the navigation and the sidebar, whose choices
(zoo and models, layers, probes, attribution method, λ) are shared by every page.

Environment:
  DEPARA_CACHE_DIR      where graphs and terms are cached (default ~/.cache/depara-explorer); a
                        restarted app reads its results from there instead of recomputing
  DEPARA_PROBE_COUNT    probes a new session starts with (default: the zoo's, e.g. 16 photos)
  DEPARA_ALLOWED_ROOTS  folders (os.pathsep-separated) that typed server paths may lie under; none by
                        default (or: streamlit run app.py -- --allowed-root /a/folder)
  DEPARA_ALLOW_CODE=1   allow "module:function" and TorchScript models from the page (they run code on
                        the server); off by default (or: streamlit run app.py -- --allow-code)
"""

from __future__ import annotations

import streamlit as st

from depara_core.resources import asset_dir
from pages import _start

FAVICON = asset_dir("app") / "favicon.png"
st.set_page_config(page_title="DEPARA Explorer", page_icon=str(FAVICON), layout="wide")  # a local file: no icon host is asked

START = st.Page("pages/4_task_transferability.py", title="Task transferability", icon=":material/account_tree:", url_path="transferability", default=True)
PAGES = [
    st.Page("pages/1_setup.py", title="Setup", icon=":material/tune:", url_path="compute"),
    st.Page("pages/2_attribution_maps.py", title="Attribution maps", icon=":material/image_search:", url_path="attributions"),
    st.Page("pages/3_edges.py", title="Edges", icon=":material/grid_on:", url_path="graph-edges"),
    START,
    st.Page("pages/5_layer_selection.py", title="Layer selection", icon=":material/layers:", url_path="layers"),
    st.Page("pages/6_present.py", title="Present", icon=":material/slideshow:", url_path="present"),
]
page = st.navigation(PAGES)
_start.show_last_results(START.title, page.title == START.title)  # before the engine is imported (seconds on a new server)

# The engine and the service layer load after the preview above is on its way.
from datetime import datetime

from depara_core.engine.attribution import get_method, method_names
from depara_core.engine.graph import INPUT_SPACES, PRECISIONS
from depara_core.engine.plan import default_memory_budget, format_size
from depara_core.presets import PRESETS
from depara_core.probes.registry import builtin_probe_sets
from depara_core.session.bundle import build_bundle
from depara_core.session.config import LAYER_MODES
from depara_core.session.report import build_report
from depara_core.session.report import static_export_available as report_png_available
from pages import _lambda_link as lambda_link
from pages import _ui as ui

ARITHMETIC = {"fp32": "float32 (exact)", "bf16": "bfloat16 (faster)", "tf32": "TF32 (NVIDIA GPUs)"}
ARITHMETIC_HELP = (
    "How the forward and backward passes compute. float32: the reference. bfloat16 autocast: about 1.5–2× faster on "
    "recent CPUs and GPUs; norms and Gram matrices still accumulate in float32, and against float32 it moved s_V by up to "
    "1.4e-2 and s_E by up to 3e-2 (benchmarks/RESULTS.md). TF32: faster matrix products on NVIDIA GPUs, float32 elsewhere. "
    "Each arithmetic has its own cache entries."
)
COMPILE_HELP = (
    "torch.compile of each model, one compiled segment per chosen layer. Compiling takes seconds to a minute per model the "
    "first time (once per model, layers and batch size); it pays off on a GPU and little on a CPU. The same numbers within "
    "float rounding. Gradient*Input only; a model torch.fx cannot trace is refused with a message."
)


def sidebar(current: st.Page) -> None:
    """The shared choices. Each widget mirrors a plain session-state key (``ui.bind``), so choices
    survive page switches and widget re-creation."""
    ss = st.session_state
    ss.pop("job_note_slot", None)  # the last run's; this run draws its own below
    zoos = ui.zoos()
    with st.sidebar:
        st.selectbox(
            "Zoo", list(zoos), **ui.bind("zoo", ui.on_zoo_change),
            format_func=lambda n: n if zoos[n].available else f"{n} (not installed)",
            help="A built-in set of pre-trained models; add your own on the Setup page.",
        )  # fmt: skip
        z = zoos.get(ss.zoo)
        if z is not None and not z.available:
            st.caption(f"Not available: {z.unavailable_reason[:300]}{'…' if len(z.unavailable_reason) > 300 else ''}")
        zoo_names = list(ui.zoo_names(z))
        options = zoo_names + [n for n in ss.custom_models if n not in zoo_names]
        ss.models = [m for m in ss.models if m in options]
        st.multiselect("Models", options, **ui.bind("models"), help="At least two; the task tree needs three or more.")
        st.radio(
            "Layers", LAYER_MODES, horizontal=True, **ui.bind("layer_mode"),
            format_func={"encoder": "encoder", "all": "all (layer selection)"}.get,
            help="Encoder: one graph per model (model ranking). All: every selectable layer (browse layers, pick one).",
        )  # fmt: skip
        probe_options = [f"builtin:{n}" for n in builtin_probe_sets()] + [f"uploaded:{d}" for d in ss.uploaded_probes]
        if ss.probe_set not in probe_options:
            ss.probe_set = probe_options[0]
        st.selectbox("Probe set", probe_options, **ui.bind("probe_set"), format_func=ui.probe_label, help="Upload images, a zip or a folder on the Setup page.")
        st.number_input("Probes", min_value=3, max_value=5000, step=8, **ui.bind("probe_count"), help="About 200 give stable rankings; fewer compute faster.")
        st.selectbox(
            "Conventions", list(PRESETS), **ui.bind("preset", ui.on_preset_change), format_func=lambda n: n.capitalize(),
            help="Paper: the paper's definitions (the default). Paper code: the original code's, for reproduction: "
            + PRESETS["paper code"].description.split(": ", 1)[1],
        )  # fmt: skip
        methods = method_names()
        st.selectbox("Attribution method", methods, **ui.bind("method"), format_func=lambda n: get_method(n).description)
        st.radio(
            "Input of Gradient*Input", INPUT_SPACES, **ui.bind("input_space"), horizontal=True,
            format_func={"model": "each model's own", "pixels": "probe pixels"}.get, disabled=ss.method != "gradient_x_input",
            help="Each model's own preprocessed input (the paper's): its baseline is whatever zero means after the model's "
            "normalisation (black, grey, the mean colour), so maps of models from different zoos are not comparable. "
            "Probe pixels: the gradient carried back through the preprocessing, times the pixels in [0, 1]: one black "
            "baseline for every model. For Gradient*Input only.",
        )  # fmt: skip
        if ss.input_space == "pixels" and ss.method != "gradient_x_input":
            st.caption(f"Probe pixels apply to Gradient*Input only: {get_method(ss.method).description} uses each model's own input.")
        with st.expander("Arithmetic", icon=":material/speed:", expanded=ss.precision != "fp32" or ss.compile):
            st.radio("Precision", list(PRECISIONS), **ui.bind("precision"), format_func=ARITHMETIC.get, help=ARITHMETIC_HELP)
            st.toggle("Compile the passes (torch.compile)", **ui.bind("compile"), disabled=ss.method != "gradient_x_input", help=COMPILE_HELP)
            if ss.compile and ss.method != "gradient_x_input":
                st.caption(f"Compiling applies to Gradient*Input only: {get_method(ss.method).description} runs eagerly.")
        if current.title == "Task transferability":  # the page's own λ controls update live; no stale copy here
            st.caption("λ (edge weight): set with the slider on this page.")
        else:
            st.number_input("λ (edge weight)", min_value=0.0, max_value=100.0, step=0.05, **ui.bind("lam", widget="lam_sidebar"), help=f"s = {'' if PRESETS[ss.preset].node_scale == 1 else format(PRESETS[ss.preset].node_scale, 'g') + '·'}s_V + λ·s_E")
        st.text_input(
            "Memory budget", **ui.bind("memory_budget"), placeholder=f"automatic ({format_size(default_memory_budget())} now)",
            help="Memory the engine may hold for features and maps, e.g. 512MiB or 2GiB. Larger layers are computed in"
            " groups or from disk with the same numbers; a smaller budget is slower, never different.",
        )  # fmt: skip
        ui.memory_budget(report=True)  # a size it cannot read is reported beside the field
        ui.job_note_slot()
        if ui.png_available():
            st.toggle("PNG download buttons", **ui.bind("png_buttons"), help="Charts always save SVG from their toolbar camera; PNGs are drawn on the server.")


def export() -> None:
    """The 'Export report' button: one self-contained HTML file of the current results."""
    ss = st.session_state
    done = [w for w in ss.get("workspaces", {}).values() if w.complete]
    if not done:
        return
    ws = done[-1]
    png = report_png_available() and st.sidebar.checkbox("PNG copies in the report (slower)", key="report_png")
    lam, target, link, view, display, maps = float(ss.lam), ss.get("target"), ui.link_now(), ss.get("method_view", "DEPARA"), ui.map_display(), ui.maps_shown(ws)
    gt = ui.ground_truth(ws)
    truth = ui.layer_truth()
    st.sidebar.download_button(
        "Export report", data=lambda: build_report(ws, lam, target=target, ground_truth=gt, layer_truth=truth, png=png, display=display),
        file_name=f"depara-report-{datetime.now():%Y%m%d-%H%M}.html", mime="text/html", icon=":material/download:",
        on_click="ignore", help="One HTML file with every figure and table of the current results (opens offline).",
    )  # fmt: skip
    st.sidebar.download_button(
        "Export bundle", data=lambda: build_bundle(ws, lam, target=target, ground_truth=gt, layer_truth=truth, link=link, method=view, display=display, maps=maps),
        file_name=f"depara-{datetime.now():%Y%m%d-%H%M}.zip", mime="application/zip", icon=":material/folder_zip:", on_click="ignore",
        help="A zip for slides: a compact summary, every figure as SVG and PNG, tables as CSV, the task tree as Newick and "
        "the settings, which the Setup page reopens.",
    )  # fmt: skip


ui.init_state()
lambda_link.forget_drawn()  # a full run draws the λ sweep anew
sidebar(page)
page.run()
_start.clear()  # if the page did not (it clears the preview once its own results are drawn)
export()  # after the page, so that results computed in this run can be exported at once
ui.share_link()  # after the page, so that the link holds what the page chose (e.g. its target)
