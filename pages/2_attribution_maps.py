"""Attribution maps: the nodes of each graph (Gradient*Input by default) over the probes, per model or
per layer; one probe enlarged; two models compared probe by probe (the terms of s_V)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from depara_core.compare.chance import node_chance
from depara_core.engine.attribution import get_method
from depara_core.session.link import MAX_MAP_PROBES
from depara_core.viz.display import OFFERED, VIEWS
from depara_core.viz.plots import cosine_histogram
from depara_core.viz.views import attribution_grid_view, node_agreement, probe_views
from pages import _ui as ui

ws = ui.results_page(
    "Attribution maps",
    "Each node of a DEPARA graph is the attribution map of one probe: where the input drives the layer's features. Red: positive, blue: negative.",
)
ss = st.session_state
probes = ws.probes


def offered(choice: str) -> dict:
    low, high, step = OFFERED[choice]
    return {"min_value": low, "max_value": high, "step": step}


with ui.guard("controls"):
    c1, c2, c3 = st.columns([2, 1, 1])
    # bound to plain keys (ui.bind): the choices survive visits to other pages, and the exports draw maps the same way
    by = "models"
    if ws.config.layer_mode == "all":
        by = c1.radio("Columns", ["models", "layers"], horizontal=True, **ui.bind("attr_by"), format_func={"models": "models", "layers": "layers of one model"}.get)
    c2.radio("Values", [True, False], horizontal=True, **ui.bind("attr_signed"), format_func={True: "signed", False: "absolute"}.get)
    c3.slider("Clip at percentile of |a|", **offered("clip_percentile"), **ui.bind("attr_clip"), help="Outliers beyond this percentile saturate the colour scale.")
    d1, d2, d3, d4 = st.columns([2, 1, 1, 1])
    d1.radio("Show", VIEWS, horizontal=True, **ui.bind("attr_view"), format_func={"blended": "map over photo", "map": "map only", "masked": "photo masked by |map|"}.get,
             help="Display only: the graphs and every similarity stay as computed.")  # fmt: skip
    d2.slider("Opacity", **offered("opacity"), **ui.bind("attr_opacity"), disabled=ss.attr_view != "blended")
    d3.slider("Smoothing (px)", **offered("smoothing"), **ui.bind("attr_smooth"), help="Gaussian blur of the displayed map, e.g. to read checkerboards of strided layers.")
    d4.toggle("One colour scale", **ui.bind("attr_shared"), help="One colour range for every map shown, so models compare by colour; else each map is scaled on its own.")
    display = ui.map_display()
    methods = list(dict.fromkeys([*ui.MAP_METHODS, ws.config.method]))
    method = st.segmented_control("Maps by", methods, **ui.bind_among("attr_method", methods, ws.config.method), format_func=lambda n: get_method(n).label,
                                  help="View the maps of another attribution method; the graphs and every similarity keep the sidebar's method.") or ws.config.method  # fmt: skip
    if by == "models":
        models = st.multiselect("Models", ws.names, **ui.bind_among("attr_models", ws.names, ui.shown_models(ws)))
        wanted = {m: [ws.encoder(m)] for m in models}
    else:
        model = st.selectbox("Model", ws.names, **ui.bind_among("attr_model", ws.names, ws.names[0]))
        computed = ws.computed_layers(model)
        layers = st.multiselect("Layers", computed, **ui.bind_among("attr_layers", computed, list(computed[-4:])), format_func=lambda layer: ws.layer_label(model, layer))
        wanted = {model: layers} if layers else {}
    src = ui.maps_source(ws, method, wanted) if wanted else ws
    if src is not ws:
        st.caption(f"Showing {get_method(method).label} maps; the graphs and similarities use {get_method(ws.config.method).label} (the sidebar's attribution method).")
    columns = [(ws.layer_label(m, layer).split(":")[0] if by == "layers" else m, src.graph(m, layer), ws.model(m).spec.preprocess) for m, ls in wanted.items() for layer in ls]
    chosen = st.multiselect("Probes", list(probes.ids), **ui.bind_among("attr_probes", probes.ids, ui.shown_probes(ws)), max_selections=MAX_MAP_PROBES)
    indices = [probes.ids.index(p) for p in chosen]

with ui.guard("attribution grid"):
    if columns and indices:
        ui.chart(attribution_grid_view(columns, probes, indices, display), "attribution-grid", key="attr_grid")
    else:
        st.info("Choose at least one model (or layer) and one probe.")

st.subheader("One probe, enlarged")
with ui.guard("enlarged probe"):
    if columns:
        probe = st.selectbox("Probe", list(probes.ids), index=indices[0] if indices else 0, key="attr_big")
        i = probes.ids.index(probe)
        cols = st.columns(min(len(columns), 3))
        for k, ((label, _, _), fig) in enumerate(zip(columns, probe_views(columns, probes, i, display))):
            with cols[k % len(cols)]:
                ui.chart(fig, f"attribution-{label}-{probe}", key=f"big_{k}")

st.subheader("Two models side by side")
with ui.guard("model comparison"):
    if len(ws.names) >= 2:
        a_col, b_col = st.columns(2)
        a = a_col.selectbox("Model A", ws.names, **ui.bind_among("node_a", ws.names, ws.names[0]))
        b = b_col.selectbox("Model B", ws.names, **ui.bind_among("node_b", ws.names, ws.names[1]))
        ga, gb = ws.graph(a), ws.graph(b)
        table = node_agreement(ga, gb, probes, thumbs=False)
        table.insert(0, "image", [ui.thumb(probes.digest, int(i), probes) for i in table["index"]])
        chance = node_chance(ga, gb)
        m1, m2 = st.columns([1, 2])
        m1.metric(f"s_V({a}, {b}) = mean node cosine", f"{chance.matched:.4f}", help="The mean over probes of the cosine between the two models' maps of the same probe.")
        m1.metric("Chance level (mismatched probes, 95%)", f"{chance.floor:.4f}", help="s_V when each map of A is paired with B's map of a different probe (200 random pairings).")
        if chance.at_chance:
            m1.warning(f"s_V is at chance level (permutation p = {chance.p_value:.2f}): these maps are no more alike on the same probe than on "
                       "different ones, so the node term says nothing about this pair; the edges (s_E) still may.", icon=":material/warning:")  # fmt: skip
        with m2:
            ui.chart(cosine_histogram(chance.matched_cosines, chance.null_cosines, chance.floor, title="node cosines: same probe vs mismatched"), f"node-chance-{a}-{b}", key="node_chance")
        agree, disagree = st.columns(2)
        with agree:
            st.markdown("**Where they agree most**")
            ui.table(table.head(5), f"nodes-agree-{a}-{b}", key="agree", images=("image",))
        with disagree:
            st.markdown("**Where they disagree most**")
            ui.table(table.tail(5).iloc[::-1], f"nodes-disagree-{a}-{b}", key="disagree", images=("image",))
        worst = int(table["index"].iloc[-1])
        pick = st.selectbox("Compare on probe", list(table["probe"]), index=len(table) - 1, key="node_probe")
        i = probes.ids.index(pick) if pick else worst
        cos = float(table.loc[table["probe"] == probes.ids[i], "node cosine"].iloc[0])
        left, right = st.columns(2)
        with left:
            fa, fb = probe_views([(a, ga, ws.model(a).spec.preprocess), (b, gb, ws.model(b).spec.preprocess)], probes, i, display)
            ui.chart(fa, f"attribution-{a}-{probes.ids[i]}", key="pair_a")
        with right:
            ui.chart(fb, f"attribution-{b}-{probes.ids[i]}", key="pair_b")
        st.caption(f"Node cosine on {probes.ids[i]}: {cos:.4f} (rank {int(np.flatnonzero(table['probe'] == probes.ids[i])[0]) + 1} of {len(table)}).")
        with st.expander("All probes"):  # without thumbnails: a few hundred of them made the page's largest message
            ui.table(table.drop(columns=["index", "image"]), f"node-cosines-{a}-{b}", key="all_nodes")
