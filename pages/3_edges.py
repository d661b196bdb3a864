"""Edges: each graph's probe × probe cosine similarities of features, probes grouped by clustering;
two models side by side with s_E and the probe pairs they disagree on most."""

from __future__ import annotations

import streamlit as st

from depara_core.viz.views import edge_disagreement, edge_pair_view, edge_view
from pages import _ui as ui

ws = ui.results_page(
    "Edges",
    "Edge (i, j) is the cosine similarity of the layer's features on probes i and j. s_E is the Spearman correlation of two graphs' edges.",
)
probes = ws.probes


def layer_of(model: str, key: str) -> str:
    layers = ws.computed_layers(model)
    if len(layers) <= 1:
        return ws.encoder(model)
    return st.selectbox(f"Layer of {model}", layers, **ui.bind_among(key, layers, ws.encoder(model)), format_func=lambda layer: ws.layer_label(model, layer))


st.subheader("Two models side by side")
with ui.guard("edge comparison"):
    a_col, b_col = st.columns(2)
    with a_col:
        a = st.selectbox("Model A", ws.names, **ui.bind_among("edge_a", ws.names, ws.names[0]))
        la = layer_of(a, "edge_layer_a")
    with b_col:
        b = st.selectbox("Model B", ws.names, **ui.bind_among("edge_b", ws.names, ws.names[min(1, len(ws.names) - 1)]))
        lb = layer_of(b, "edge_layer_b")
    ga, gb = ws.graph(a, la), ws.graph(b, lb)
    fa, fb, s_e = edge_pair_view(ga, gb)
    st.metric(f"s_E({a}, {b})", f"{s_e:.4f}", help="Spearman correlation of the upper-triangle edges; both heatmaps use model A's cluster order.")
    left, right = st.columns(2)
    with left:
        ui.chart(fa, f"edges-{a}-{la}", key="edges_a")
    with right:
        ui.chart(fb, f"edges-{b}-{lb}", key="edges_b")
    st.markdown("**Probe pairs they disagree on most** (difference of the edges' normalised ranks)")
    top = st.slider("Pairs", 5, 50, **ui.bind("edge_top"))
    table = edge_disagreement(ga, gb, probes, top=top, thumbs=False)
    ids = list(probes.ids)
    table.insert(0, "A", [ui.thumb(probes.digest, ids.index(p), probes) for p in table["probe A"]])
    table.insert(1, "B", [ui.thumb(probes.digest, ids.index(p), probes) for p in table["probe B"]])
    ui.table(table, f"edge-disagreement-{a}-{b}", key="edge_pairs", images=("A", "B"))

st.subheader("Each model")
with ui.guard("edge heatmaps"):
    first = list(ws.names[2:4] if len(ws.names) > 2 else ws.names[:2])  # the two after the default A and B
    shown = st.multiselect("Models", ws.names, **ui.bind_among("edge_models", ws.names, first), help="Each model's own cluster order (two models are drawn side by side above).")
    cols = st.columns(2)
    for k, name in enumerate(shown):
        with cols[k % 2]:
            ui.chart(edge_view(ws.graph(name), title=f"{name} / {ws.encoder(name)}"), f"edges-{name}", key=f"edges_all_{k}")
